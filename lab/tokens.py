"""The lab's hosts in the dashboard's database, through `manage.py hosttoken` (the lab never imports Django).

`manage.py hosttoken NAME` creates a host and prints its token on its last line; `--rotate` gives an
existing (also a revoked) host a new one; `--revoke` withdraws it, so that a stopped lab's hosts show
as revoked on the Hosts page instead of as hosts that went quiet. The commands run with the
repository's virtualenv python in the repository, with this process's environment (DATABASE_URL and
the rest of the dashboard's configuration).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable


class TokenError(Exception):
    """manage.py hosttoken failed; the message says with what output."""


def hosttoken(name: str, *options: str) -> str:
    """Run `manage.py hosttoken NAME OPTIONS`; its output (TokenError when it fails)."""
    done = subprocess.run(
        [PYTHON, "manage.py", "hosttoken", name, *options],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise TokenError(f"manage.py hosttoken {' '.join([name, *options])}: {said[0]}")
    return done.stdout


def register(name: str, underlay: str) -> str:
    """A fresh token for host `name`, with its underlay address set: rotated if the host exists (as
    `make run` does for its own host), created otherwise."""
    try:
        output = hosttoken(name, "--rotate", "--underlay", underlay)
    except TokenError as rotating:
        try:
            output = hosttoken(name, "--underlay", underlay)
        except TokenError as creating:
            raise TokenError(f"cannot register lab host {name}: {rotating}; {creating}") from None
    return output.strip().splitlines()[-1]


def revoke(name: str) -> None:
    """Revoke host `name`'s token; a host that does not exist (any more) is no error."""
    try:
        hosttoken(name, "--revoke")
    except TokenError as exc:
        if f"no host named {name!r}" not in str(exc):  # NotFound, as webapp.hosts.selectors says it
            raise
