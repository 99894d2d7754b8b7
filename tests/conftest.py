import itertools
import json
import socket
import time
from pathlib import Path

import pytest
from pgcluster import Cluster

APP_PASSWORD = "pw-Ledger 2026!s3cret"
SESSION_STARTED = time.time()


def free_port():
    """A loopback TCP port nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def cluster():
    """One private cluster for the whole run, on its own socket and a loopback port; each test
    makes its own databases in it."""
    c = Cluster(port=free_port(), listen="127.0.0.1").start()
    yield c
    c.destroy()


@pytest.fixture
def bare_cluster():
    """A cluster of its own, where the project's roles have never existed."""
    c = Cluster().start()
    yield c
    c.destroy()


@pytest.fixture
def fresh_db(cluster):
    """An empty database, dropped after the test."""
    name = cluster.create_database()
    yield name
    cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def migrated_db(cluster, fresh_db):
    """A database with the ledger installed by make migrate's script."""
    result = cluster.migrate(fresh_db)
    assert result.returncode == 0, result.stderr
    return fresh_db


@pytest.fixture(scope="session")
def ledger_db(cluster):
    """One migrated database shared by the executor and recorder tests (each uses its own task ids)."""
    name = cluster.create_database()
    result = cluster.migrate(name)
    assert result.returncode == 0, result.stderr
    cluster.admin("CREATE ROLE jr_app LOGIN PASSWORD %s IN ROLE jr_executor", (APP_PASSWORD,))
    cluster.admin("CREATE ROLE jr_grader LOGIN PASSWORD %s IN ROLE jr_rewarder", (APP_PASSWORD,))
    yield name
    cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")
    cluster.admin("DROP ROLE jr_app, jr_grader")


@pytest.fixture(scope="session")
def app_config(cluster, ledger_db):
    """The executor's db_config: a login that is only a member of jr_executor, over TCP with a password."""
    return {"host": "127.0.0.1", "port": cluster.port, "user": "jr_app", "password": APP_PASSWORD,
            "dbname": ledger_db}


@pytest.fixture(scope="session")
def rewarder_config(app_config):
    """The reward work's db_config: a login that is only a member of jr_rewarder."""
    return dict(app_config, user="jr_grader")


_task_ids = itertools.count(1000)


@pytest.fixture
def task_id():
    """A task id no other test uses."""
    return next(_task_ids)


@pytest.fixture
def spool_path(tmp_path):
    return tmp_path / "spool" / "spool.jsonl"


@pytest.fixture
def down_config(app_config):
    """The same login, pointed at a loopback port where nothing listens: connection refused."""
    return dict(app_config, port=free_port())


def state(cluster, db_name, task_id):
    """(step, result, attempts, time, error) of each step of a task, as the ledger holds it."""
    return cluster.admin("SELECT step_number, execution_result, attempts, execution_time_ms, error_detail"
                         " FROM jr_step_rewards WHERE task_id = %s ORDER BY step_number", (task_id,), dbname=db_name)


def history(cluster, db_name, task_id):
    """(step, attempt, result) of every event of a task, in the order the ledger received them."""
    return cluster.admin("SELECT step_number, attempt_number, execution_result FROM jr_step_attempts"
                         " WHERE task_id = %s ORDER BY id", (task_id,), dbname=db_name)


def pytest_terminal_summary(terminalreporter):
    """Print the reliability figures this run measured (README.md, Reliability, quotes them)."""
    results = Path(__file__).resolve().parent / ".results" / "faults.json"
    if not results.exists() or results.stat().st_mtime < SESSION_STARTED:
        return
    terminalreporter.section("reliability figures (tests/.results/faults.json)")
    for name, figures in sorted(json.loads(results.read_text()).items()):
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(figures.items())))
