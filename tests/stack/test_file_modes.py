"""The files the web app keeps (var/: database, secret key, first admin's password) are readable by the
user it runs as alone: after `make setup` (its migrate), after the first `make run`, and on a machine
set up before they were (var/ 0755, db.sqlite3 0644), after its next start."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.stack.harness import PYTHON, REPO, base_env, until
from tests.stack.test_run_local import PRIVATE_RUN


def var_env(env: dict[str, str], var: Path) -> dict[str, str]:
    """`env` with the defaults of a fresh checkout: SQLite in var/, the secret key generated into it."""
    env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "SWITCHBOARD_SECRET_KEY")}
    return {**env, "SWITCHBOARD_VAR_DIR": str(var)}


def manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def loose(var: Path) -> dict[str, str]:
    """Everything in `var` (recursively) with a group or other permission bit, and var/ itself if so."""
    found = {}
    for path in [var, *var.rglob("*")]:
        st = path.lstat()
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            found[str(path.relative_to(var.parent))] = f"{st.st_mode & 0o7777:04o} uid {st.st_uid}"
    return found


def modes(var: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mode & 0o7777 for path in [var, *var.iterdir()]}


@pytest.mark.asyncio
async def test_make_setup_then_make_run_keep_every_file_to_their_user(make_stack) -> None:
    stack = make_stack()
    var = stack.workdir / "var"  # not there yet, as in a fresh checkout
    env = var_env(stack.env(), var)

    manage(env, "migrate", "--noinput")  # what `make setup` does to the database
    assert modes(var) == {"var": 0o700, "db.sqlite3": 0o600, "secret_key": 0o600}

    port = stack.free_port()
    args = ["nsenter", f"--net={stack.ns.path}", "unshare", "--mount", "--propagation", "private"]
    run = stack.cleanups.start(
        "run-local", [*args, "sh", "-c", PRIVATE_RUN], env={**env, "PORT": str(port)}, log=stack.log("run")
    )

    def started() -> bool:
        assert run.alive, f"run-local.sh exited ({run.popen.returncode}):\n{run.tail()}"
        return "Ctrl-C stops the web app and the agent." in run.output()

    await until(started, timeout=60, what="run-local.sh's box")
    assert f"    password: in {var}/admin-password (mode 0600, " in run.output()
    assert modes(var) == {"var": 0o700, "db.sqlite3": 0o600, "secret_key": 0o600, "admin-password": 0o600}
    assert loose(var) == {}

    os.kill(run.pid, signal.SIGTERM)
    assert await asyncio.to_thread(run.popen.wait, 30) == 0, run.tail()
    assert loose(var) == {}


def test_a_var_set_up_before_is_made_private_on_the_next_start(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = var_env(base_env(HOME=str(tmp_path)), var)
    manage(env, "migrate", "--noinput")
    # as this project left them before: a 0755 var/, a 0644 database; a journal SQLite left behind
    var.chmod(0o755)
    (var / "db.sqlite3").chmod(0o644)
    (var / "db.sqlite3-journal").write_bytes(b"")
    (var / "db.sqlite3-journal").chmod(0o644)
    assert len(loose(var)) == 3

    manage(env, "check")  # any start (`make run`'s ensureadmin, daphne) loads the settings first
    assert modes(var) == {"var": 0o700, "db.sqlite3": 0o600, "secret_key": 0o600, "db.sqlite3-journal": 0o600}
    assert loose(var) == {}
