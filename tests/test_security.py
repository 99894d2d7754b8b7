"""Passwords never appear in warnings, CLI output, make's output or the server's log; the agent being
graded cannot grade itself. (The other privilege and search_path checks are SQL:
db/tests/10_security.sql and 13_exact_acls.sql.)"""

import logging
import os
import subprocess
import sys

import psycopg2
import psycopg2.errors
import pytest
from conftest import APP_PASSWORD
from jr_step_rewards import StepRecorder
from jr_step_rewards.records import StepEvent
from jr_step_rewards.spool import Spool
from pgcluster import LIBPQ_VARS, MIGRATE, run_make

WRONG = "Wr0ng-Secret zq9xv7"


def secrets_in(text, *secrets):
    return [s for secret in secrets for s in (secret, *secret.split()) if len(s) >= 6 and s in text]


def test_no_password_in_cli_output(cluster, ledger_db, spool_path):
    Spool(spool_path).append(StepEvent.create(1, 1, "bash", None, "success", 1))  # so replay must connect
    base = f"host=127.0.0.1 port={cluster.port} dbname={ledger_db}"
    runs = [
        ["--dsn", f"{base} user=jr_app password='{WRONG}'", "status", "--task-id", "1"],
        ["--dsn", f"{base} user=jr_app password='{WRONG}'", "stats"],
        ["--dsn", f"{base} user=jr_app password='{WRONG}'", "--spool", str(spool_path), "replay"],
        ["--dsn", f"{base} user=jr_app password='{APP_PASSWORD}'", "status", "--task-id", "1"],  # no SELECT
        ["--dsn", f"{base} user=jr_app password={WRONG}", "stats"],  # malformed: an unquoted space
    ]
    env = {k: v for k, v in os.environ.items() if k not in LIBPQ_VARS}
    for args in runs:
        result = subprocess.run([sys.executable, "-m", "jr_step_rewards", *args], capture_output=True, text=True,
                                env=env, timeout=60)
        assert result.returncode == 1, (args, result.stderr)
        assert secrets_in(result.stdout + result.stderr, WRONG, APP_PASSWORD) == [], result.stderr


def test_no_password_in_recorder_warnings(cluster, ledger_db, spool_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, "jr_step_rewards")
    monkeypatch.setenv("PGPASSWORD", WRONG)
    for recorder in (StepRecorder({"host": "127.0.0.1", "port": cluster.port, "user": "jr_app", "dbname": ledger_db},
                                  spool_path=spool_path),
                     StepRecorder(dsn=f"host=127.0.0.1 port={cluster.port} user=jr_app password='{WRONG}'",
                                  spool_path=spool_path)):
        recorder.record_step(1, 1, "bash", None, "success", 1)
        recorder.set_step_reward(1, 1, 0.5)
        recorder.replay()
        recorder.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "password authentication failed" in text
    assert secrets_in(text, WRONG) == []


def test_no_password_from_make_migrate_make_where_or_migrate_itself(cluster, ledger_db):
    wrong = {"PGHOST": "127.0.0.1", "PGPORT": str(cluster.port), "PGUSER": "jr_app", "PGDATABASE": ledger_db,
             "PGPASSWORD": WRONG}
    for target in ("migrate", "where"):
        result = run_make(target, **wrong)
        assert result.returncode != 0
        assert "cannot connect" in result.stderr and "password authentication failed" in result.stderr, result.stderr
        assert secrets_in(result.stdout + result.stderr, WRONG) == [], result.stderr
    # make runs where.py first; migrate.py's own connection error, without it:
    direct = subprocess.run([sys.executable, str(MIGRATE)], env={**cluster.env(ledger_db), **wrong},
                            capture_output=True, text=True, timeout=60)
    assert direct.returncode == 1
    assert direct.stderr.startswith("migrate: cannot connect: the server refused login 'jr_app'"), direct.stderr
    assert secrets_in(direct.stdout + direct.stderr, WRONG) == []


def test_no_password_in_the_server_log(cluster, ledger_db):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host="127.0.0.1", port=cluster.port, user="jr_app", password=WRONG, dbname=ledger_db)
    log = (cluster.data.parent / "server.log").read_text(errors="replace")
    assert "password authentication failed" in log, "the failed logins above reached the log"
    assert secrets_in(log, WRONG, APP_PASSWORD) == []


def test_the_history_records_the_login_that_made_the_call_whatever_label_it_gives(cluster, ledger_db, app_config,
                                                                                 spool_path, task_id):
    recorder = StepRecorder(app_config, spool_path=spool_path, executor_id="postgres")
    try:
        assert recorder.record_step(task_id, 1, "bash", None, "success", 1) is True
    finally:
        recorder.close()
    assert cluster.admin("SELECT executor, recorded_by FROM jr_step_attempts WHERE task_id = %s", (task_id,),
                         dbname=ledger_db) == [("postgres", app_config["user"])]


def test_the_executor_cannot_grade_itself_and_the_rewarder_can(cluster, ledger_db, app_config, rewarder_config,
                                                               spool_path, task_id, caplog):
    """The agent being graded logs in as a member of jr_executor only: it records its steps, but may
    neither reward them nor write the exploration log. The reward work's login, a member of
    jr_rewarder only, may."""
    recorder = StepRecorder(app_config, spool_path=spool_path)
    assert recorder.record_step(task_id, 1, "bash", None, "failed", 1, "exit 1") is True
    self_grading = [f"SELECT set_step_reward({task_id}, 1, 1.0, 'correct', 'skip')",
                    f"SELECT record_exploration('jr', 'graded-by-{task_id}', 1.0, 1.0, 'success')"]
    executor = psycopg2.connect(**app_config)
    executor.autocommit = True
    try:
        for call in self_grading:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege), executor.cursor() as cur:
                cur.execute(call)
    finally:
        executor.close()
    # Through the recorder, the refusal names the grant the reward work's login needs.
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    assert recorder.set_step_reward(task_id, 1, 1.0, "correct") is False
    recorder.close()
    assert any("lacks EXECUTE on set_step_reward" in r.getMessage() and "GRANT jr_rewarder TO jr_app" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert cluster.admin("SELECT implicit_reward, verified_outcome FROM jr_step_rewards WHERE task_id = %s",
                         (task_id,), dbname=ledger_db) == [(None, None)]

    grader = psycopg2.connect(**rewarder_config)
    grader.autocommit = True
    try:
        with grader.cursor() as cur:
            for call in self_grading:
                cur.execute(call)
    finally:
        grader.close()
    assert cluster.admin("SELECT implicit_reward, verified_outcome FROM jr_step_rewards WHERE task_id = %s",
                         (task_id,), dbname=ledger_db) == [(1.0, "correct")]
    assert cluster.admin("SELECT count(*) FROM jr_exploration_log WHERE task_type = %s", (f"graded-by-{task_id}",),
                         dbname=ledger_db) == [(1,)]
