"""Fixtures of the maintenance, demo and operating-guide tests (helpers: nodeproc.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.cli.nodeproc import ThrowAwayDatabases, admin_execute
from tests.conftest import POSTGRES_ADMIN_URL, REQUIRE_POSTGRES, run_in_own_loop


@pytest.fixture
def short_tmp():
    """A short directory under /tmp: DATA/admin.sock must stay under 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="troc-t-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def unwritable_dir(tmp_path):
    """A directory nobody may write into, root included (immutable when root)."""
    target = tmp_path / "locked"
    target.mkdir()
    if os.geteuid() == 0:
        locked = subprocess.run(["chattr", "+i", str(target)], check=False, capture_output=True)
        if locked.returncode:
            pytest.skip("running as root and chattr +i is not available here")
        yield target
        subprocess.run(["chattr", "-i", str(target)], check=True)
    else:
        target.chmod(0o555)
        yield target
        target.chmod(0o755)


@pytest.fixture
def postgres():
    """Make throw-away PostgreSQL databases; skip (or fail in CI) without a server."""
    try:
        run_in_own_loop(admin_execute, "SELECT 1")
    except Exception as exc:  # noqa: BLE001 - whatever keeps us from the server
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    if shutil.which("pg_dump") is None and not REQUIRE_POSTGRES:
        pytest.skip("pg_dump is not installed")
    databases = ThrowAwayDatabases()
    yield databases
    databases.drop_all()
