"""The desired-state service tests again, on PostgreSQL: the host lock (SELECT ... FOR UPDATE) and the
constraints as a deployment's database enforces them, not only as SQLite does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.webapp.conftest import PostgresCluster

REPO = Path(__file__).resolve().parents[2]
SERVICE_TESTS = "tests/webapp/test_networks_services.py"


def test_the_desired_state_services_pass_on_postgresql(postgres: PostgresCluster) -> None:
    # a pytest of its own: the session's database is chosen from DATABASE_URL when Django starts.
    # --reuse-db keeps its test database, which shows below that PostgreSQL was the one used.
    env = {**os.environ, "DATABASE_URL": postgres.url("services")}
    env.pop("REDIS_URL", None)
    child = subprocess.run(
        [sys.executable, "-m", "pytest", SERVICE_TESTS, "-q", "-p", "no:cacheprovider", "--reuse-db"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    summary = child.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, summary
    with psycopg.connect(host=str(postgres.socket_dir), user="postgres", dbname="test_services") as db:
        names = {row[0] for row in db.execute("SELECT conname FROM pg_constraint")}
    assert {"attachment_unique_address_per_host", "topology_unique_name_per_host"} <= names
