"""Under CI=true a database server that does not answer fails the run instead of skipping
its third of the suite (elsewhere that third is skipped, saying why): shown on MariaDB."""

import os
import subprocess
import sys

from tests.helpers import ROOT

# One test, on the MariaDB backend only, with MariaDB looked for where nothing listens.
_ONE_TEST = "tests/api/test_users_crud.py::test_get_user_returns_the_user"
_NOWHERE = {"TEST_MYSQL_URL": "mysql+pymysql://root@127.0.0.1:1/test"}


def test_an_unreachable_server_fails_the_run_under_ci() -> None:
    env = {**os.environ, **_NOWHERE, "CI": "true"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", _ONE_TEST, "-k", "mysql"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "CI=true but mysql is unreachable" in output, output
