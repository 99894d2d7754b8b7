"""Failures that are not outages: each is told as what it is, with its fix (failures.classify is
the one home of that), again and again at a bounded rate for as long as it lasts, never at DEBUG
only; its records wait in the spool and replay once it is fixed. Only the call's own bad input is
rejected."""

import concurrent.futures
import logging
import os
import subprocess
import sys
import time

import psycopg2
import pytest
from conftest import APP_PASSWORD, state
from jr_step_rewards import StepRecorder
from jr_step_rewards.failures import ConfigurationError, classify, dsn_problem
from jr_step_rewards.records import InvalidEvent, StepEvent
from jr_step_rewards.spool import Spool
from pgcluster import LIBPQ_VARS

LOGIN, DB = "claude", "zammad_production"


def server(sqlstate, message):
    """A real server error with this SQLSTATE and message, as psycopg2 raises it."""
    return ("server", sqlstate, message)


def client(exc_type, text):
    """An error without a SQLSTATE, as libpq (at connect time), a pooler or psycopg2 raise it."""
    return ("client", exc_type, text)


# (case, the failure, its kind, words its message must hold)
CASES = [
    # outages: spooled, retried by the recorder itself
    ("connection refused", client(psycopg2.OperationalError, 'connection to server at "bluefin" (10.0.0.5), port '
     '6432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n'),
     "outage", ["database unavailable (OperationalError: connection to server", "Connection refused"]),
    ("connection reset", client(psycopg2.OperationalError, "server closed the connection unexpectedly\n\tThis "
     "probably means the server terminated abnormally\n"), "outage", ["database unavailable"]),
    ("connect timeout", client(psycopg2.OperationalError, 'connection to server at "bluefin" failed: timeout expired'),
     "outage", ["timeout expired"]),
    ("server shutting down at connect", client(psycopg2.OperationalError, 'connection to server at "bluefin" failed: '
     "FATAL:  the database system is shutting down"), "outage", ["shutting down"]),
    ("too many clients at connect", client(psycopg2.OperationalError, "FATAL:  sorry, too many clients already"),
     "outage", ["too many clients"]),
    ("a closed connection", client(psycopg2.InterfaceError, "connection already closed"), "outage", ["closed"]),
    ("57P01 admin_shutdown", server("57P01", "terminating connection due to administrator command"), "outage",
     ["database unavailable (AdminShutdown: terminating connection"]),
    ("57P02 crash_shutdown", server("57P02", "terminating connection because of crash of another server process"),
     "outage", ["crash"]),
    ("57P03 cannot_connect_now", server("57P03", "the database system is starting up"), "outage", ["starting up"]),
    ("08006 connection_failure", server("08006", "connection failure"), "outage", ["connection failure"]),
    ("08P01 a pooler's query_wait_timeout", server("08P01", "query_wait_timeout"), "outage", ["query_wait_timeout"]),
    ("53300 too_many_connections", server("53300", "sorry, too many clients already"), "outage", ["too many"]),
    ("53100 disk_full", server("53100", "could not extend file: No space left on device"), "outage", ["No space"]),
    ("57014 query_canceled: our statement_timeout", server("57014", "canceling statement due to statement timeout"),
     "outage", ["statement timeout"]),
    ("55P03 lock_not_available: our lock_timeout", server("55P03", "canceling statement due to lock timeout"),
     "outage", ["lock timeout"]),
    ("40001 serialization_failure", server("40001", "could not serialize access"), "outage", ["serialize"]),
    ("40P01 deadlock_detected", server("40P01", "deadlock detected"), "outage", ["deadlock"]),
    ("our deadline", TimeoutError("no answer within 2 s"), "outage", ["database unavailable (TimeoutError: no answer"]),
    ("our deadline, as the future says it", concurrent.futures.TimeoutError(), "outage", ["database unavailable"]),
    # a refused login: a person checks the password, pg_hba.conf, the role or the database
    ("wrong password", client(psycopg2.OperationalError, 'connection to server at "bluefin", port 6432 failed: '
     'FATAL:  password authentication failed for user "jr_app"'), "login_refused",
     ["the server refused login 'jr_app' (", "password authentication failed", "check its password",
      "PGPASSWORD or ~/.pgpass", "pg_hba.conf"]),
    ("wrong password, as PgBouncer says it", client(psycopg2.OperationalError, 'connection to server at "bluefin", '
     "port 6432 failed: FATAL:  SASL authentication failed"), "login_refused",
     ["the server refused login 'claude' (", "SASL authentication failed", "check its password"]),
    ("no password at all", client(psycopg2.OperationalError, 'connection to server at "bluefin", port 5432 failed: '
     "fe_sendauth: no password supplied"), "login_refused", ["refused login 'claude'", "check its password"]),
    ("no pg_hba.conf entry", client(psycopg2.OperationalError, 'FATAL:  no pg_hba.conf entry for host "10.0.0.9", '
     'user "claude", database "zammad_production", no encryption'), "login_refused",
     ["the server refused login 'claude'", "a DBA adds a pg_hba.conf line"]),
    ("no such role", client(psycopg2.OperationalError, 'FATAL:  role "claud" does not exist'), "login_refused",
     ["the server has no login 'claud'", "fix the user in db_config"]),
    ("no such database", client(psycopg2.OperationalError, 'FATAL:  database "zammad_prod" does not exist'),
     "login_refused", ["the server has no database 'zammad_prod'", "fix the dbname in db_config"]),
    ("no CONNECT on the database", client(psycopg2.OperationalError, 'FATAL:  permission denied for database '
     '"zammad_production"\nDETAIL:  User does not have CONNECT privilege.'), "login_refused",
     ["login 'claude' may not connect to database 'zammad_production'",
      "GRANT CONNECT ON DATABASE zammad_production TO claude"]),
    # a missing privilege
    ("42501 on record_step", server("42501", "permission denied for function record_step"), "privilege",
     ["login 'claude' lacks EXECUTE on record_step (permission denied for function record_step): "
      "a DBA runs GRANT jr_executor TO claude"]),
    ("42501 on set_step_reward", server("42501", "permission denied for function set_step_reward"), "privilege",
     ["login 'claude' lacks EXECUTE on set_step_reward (permission denied for function set_step_reward): "
      "a DBA runs GRANT jr_rewarder TO claude"]),
    ("42501 on record_exploration", server("42501", "permission denied for function record_exploration"), "privilege",
     ["a DBA runs GRANT jr_rewarder TO claude"]),
    ("42501 on a table", server("42501", "permission denied for table jr_step_rewards"), "privilege",
     ["login 'claude' lacks SELECT on jr_step_rewards", "GRANT jr_reader TO claude"]),
    ("42501 on a schema", server("42501", "permission denied for schema public"), "privilege",
     ["login 'claude' lacks a privilege", "GRANT jr_executor TO claude"]),
    # a pooler refusing a startup parameter
    ("PgBouncer refuses options", client(psycopg2.OperationalError, 'connection to server at "bluefin", port 6432 '
     "failed: FATAL:  unsupported startup parameter: options"), "startup_parameter",
     ["the server refused the startup parameter 'options'", "remove 'options' from db_config (or PGOPTIONS)",
      "ignore_startup_parameters"]),
    ("PgBouncer 1.20+ refuses a setting in options", client(psycopg2.OperationalError, 'connection to server at '
     '"bluefin", port 6432 failed: FATAL:  unsupported startup parameter in options: statement_timeout'),
     "startup_parameter", ["the server refused the startup parameter 'options'", "statement_timeout",
                           "remove 'options' from db_config", "ignore_startup_parameters"]),
    ("PgBouncer 1.20+ refuses the form of options", client(psycopg2.OperationalError, "FATAL:  unsupported options "
     "startup parameter: only '-c config=val' and '--config=val' are allowed"), "startup_parameter",
     ["remove 'options' from db_config"]),
    # the ledger not installed
    ("42883 record_step missing", server("42883", "function public.record_step(task_id => integer, step_number => "
     "integer, step_type => unknown) does not exist"), "not_installed",
     ["the ledger is not installed in database 'zammad_production'", "run make migrate"]),
    ("42883 step_succeeded missing", server("42883", "function public.step_succeeded(task_id => integer, "
     "step_number => integer, step_content_hash => unknown) does not exist"), "not_installed", ["make migrate"]),
    ("3F000 invalid_schema_name", server("3F000", 'schema "public" does not exist'), "not_installed",
     ["make migrate"]),
    ("42P01 undefined_table", server("42P01", 'relation "public.jr_step_rewards" does not exist'), "not_installed",
     ["not installed", "make migrate"]),
    # server-side limits and states a fix cures: spooled, not rejected
    ("2200H sequence_generator_limit_exceeded", server("2200H", 'nextval: reached maximum value of sequence '
     '"jr_step_rewards_id_seq" (2147483647)'), "ledger_full", ["run out of ids", "bigint"]),
    ("25006 a standby", server("25006", "cannot execute INSERT in a read-only transaction"), "read_only",
     ["read-only", "primary"]),
    ("a malformed DSN", ConfigurationError(dsn_problem("host=x password=a b")), "configuration",
     ["the DSN is malformed", "fix the DSN"]),
    ("an unknown connection option", client(psycopg2.ProgrammingError, 'invalid dsn: invalid connection option '
     '"hots"'), "configuration", ["cannot work", "hots", "fix db_config"]),
    ("an unknown PGSERVICE", client(psycopg2.OperationalError, 'definition of service "ledgr" not found'),
     "configuration", ["cannot work", "ledgr"]),
    # the call's own bad input: rejected, never retried
    ("22023 invalid_parameter_value", server("22023", "execution_result must be pending, success or failed"),
     "bad_input", ["execution_result must be"]),
    ("22004 null_value_not_allowed", server("22004", "task_id must not be NULL"), "bad_input", ["must not be NULL"]),
    ("22001 string_data_right_truncation", server("22001", "step_type is 31 characters"), "bad_input", ["31"]),
    ("23505 unique_violation", server("23505", "event_id already recorded for another step"), "bad_input",
     ["event_id"]),
    ("P0002 no_data_found", server("P0002", "step 99 is not in the ledger"), "bad_input", ["step 99"]),
    ("42883 a number beyond 32 bits", server("42883", "function public.step_succeeded(task_id => bigint, "
     "step_number => integer, step_content_hash => unknown) does not exist"), "bad_input", ["bigint"]),
    ("refused before sending", InvalidEvent("step_number must be a 32-bit integer, got 2147483648"), "bad_input",
     ["32-bit"]),
    ("a NUL psycopg2 will not send", ValueError("A string literal cannot contain NUL (0x00) characters."),
     "bad_input", ["NUL"]),
    ("a value psycopg2 cannot adapt", client(psycopg2.ProgrammingError, "can't adapt type 'dict'"), "bad_input",
     ["adapt"]),
    # anything else: a person looks
    ("XX000 internal_error", server("XX000", "could not read block 7"), "unexpected",
     ["the call failed unexpectedly (InternalError_: could not read block 7): see the server's log"]),
    ("42883 another function", server("42883", "function sha256(bytea) does not exist"), "unexpected",
     ["sha256"]),
    ("an exception of our own", RuntimeError("boom"), "unexpected", ["RuntimeError: boom"]),
]


@pytest.fixture(scope="module")
def raiser(cluster):
    conn = cluster.connect()
    conn.autocommit = True
    yield conn
    conn.close()


def make(raiser, failure):
    if isinstance(failure, BaseException):
        return failure
    origin, first, text = failure
    if origin == "client":
        return first(text)
    try:
        with raiser.cursor() as cur:
            cur.execute("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = %s, MESSAGE = %s; END $$", (first, text))
    except psycopg2.Error as exc:
        assert exc.pgcode == first
        return exc
    raise AssertionError(f"{first} was not raised")


@pytest.mark.parametrize(("case", "failure", "kind", "words"), CASES, ids=[c[0] for c in CASES])
def test_every_failure_is_told_as_what_it_is_with_its_fix(raiser, case, failure, kind, words):
    told = classify(make(raiser, failure), LOGIN, DB)
    assert told.kind == kind
    for word in words:
        assert word in told.message
    assert ("database unavailable" in told.message) == (kind == "outage"), "only an outage is called one"
    assert told.permanent == (kind == "bad_input"), "only the call's own bad input is rejected"


def test_the_table_covers_every_kind():
    assert {c[2] for c in CASES} == {"outage", "login_refused", "privilege", "startup_parameter", "not_installed",
                                     "ledger_full", "read_only", "configuration", "bad_input", "unexpected"}


def call_for(recorder, seconds, task_id):
    """Record a step every 20 ms for this long (an executor at work); returns how many calls."""
    calls, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        calls += 1
        assert recorder.record_step(task_id, calls, "bash", None, "success", 1) is False
        time.sleep(0.02)
    return calls


def test_a_refused_login_is_reported_again_and_again_until_fixed_and_nothing_is_lost(
        cluster, ledger_db, app_config, spool_path, task_id, caplog):
    caplog.set_level(logging.DEBUG, "jr_step_rewards")
    wrong = StepRecorder(dict(app_config, password="Wr0ng-Pw x9q"), spool_path=spool_path, cooldown=0.1,
                         report_interval=0.4)
    started = time.monotonic()
    calls = call_for(wrong, 1.5, task_id)
    elapsed = time.monotonic() - started
    wrong.close()
    reports = [r for r in caplog.records if "refused login 'jr_app'" in r.getMessage()]
    assert 3 <= len(reports) <= elapsed / 0.4 + 1, [r.getMessage() for r in caplog.records]
    assert all(r.levelno == logging.ERROR for r in reports), "never only at DEBUG"
    assert "check its password" in reports[0].getMessage() and "password authentication failed" in \
        reports[0].getMessage()
    assert not any("database unavailable" in r.getMessage() for r in caplog.records)
    assert not spool_path.with_name("spool.jsonl.rejected").exists(), "spooled, not rejected"

    fixed = StepRecorder(app_config, spool_path=spool_path)
    counts = fixed.replay()
    fixed.close()
    assert (counts["recorded"], counts["remaining"]) == (calls, 0)
    assert len(state(cluster, ledger_db, task_id)) == calls


def test_a_login_without_jr_executor_is_told_the_grant_and_replays_once_granted(
        cluster, ledger_db, app_config, spool_path, task_id, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    cluster.admin("CREATE ROLE jr_nogrant LOGIN PASSWORD %s", (APP_PASSWORD,))
    try:
        recorder = StepRecorder(dict(app_config, user="jr_nogrant"), spool_path=spool_path)
        assert recorder.record_step(task_id, 1, "bash", None, "success", 1) is False
        recorder.close()
        [report] = [r for r in caplog.records if "lacks EXECUTE" in r.getMessage()]
        assert report.levelno == logging.ERROR
        assert report.getMessage().startswith(
            "jr_step_rewards: login 'jr_nogrant' lacks EXECUTE on record_step (permission denied for function "
            "record_step): a DBA runs GRANT jr_executor TO jr_nogrant; records wait in ")
        assert recorder.spool.count() == 1 and not spool_path.with_name("spool.jsonl.rejected").exists()
        cluster.admin("GRANT jr_executor TO jr_nogrant")
        assert recorder.replay()["recorded"] == 1
        recorder.close()
    finally:
        cluster.admin("DROP ROLE jr_nogrant")
    assert [r[:2] for r in state(cluster, ledger_db, task_id)] == [(1, "success")]


def test_a_database_without_the_ledger_is_told_to_migrate_and_replays_once_migrated(
        cluster, fresh_db, app_config, spool_path, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    recorder = StepRecorder(dict(app_config, dbname=fresh_db), spool_path=spool_path)
    assert recorder.record_step(1, 1, "bash", None, "success", 1) is False
    assert recorder.step_succeeded(1, 1) is True, "the spooled success counts meanwhile"
    recorder.close()
    [report] = [r.getMessage() for r in caplog.records]
    assert f"the ledger is not installed in database '{fresh_db}'" in report and "run make migrate" in report
    assert recorder.spool.count() == 1
    assert cluster.migrate(fresh_db).returncode == 0
    assert recorder.replay()["recorded"] == 1
    recorder.close()


def test_a_ledger_out_of_ids_is_spooled_not_rejected_and_replays_once_fixed(
        cluster, migrated_db, app_config, spool_path, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    cluster.admin("ALTER SEQUENCE jr_step_rewards_id_seq RESTART WITH 2147483647", dbname=migrated_db)
    recorder = StepRecorder(dict(app_config, dbname=migrated_db), spool_path=spool_path)
    assert recorder.record_step(1, 1, "bash", None, "success", 1) is True, "the last id"
    assert recorder.record_step(1, 2, "bash", None, "success", 1) is False, "no id left"
    recorder.close()
    assert recorder.spool.count() == 1 and not spool_path.with_name("spool.jsonl.rejected").exists()
    [report] = [r for r in caplog.records if "run out of ids" in r.getMessage()]
    assert report.levelno == logging.ERROR and "2200H" not in report.getMessage()
    cluster.admin("ALTER SEQUENCE jr_step_rewards_id_seq RESTART WITH 1000", dbname=migrated_db)  # the DBA's fix
    assert recorder.replay()["recorded"] == 1
    recorder.close()
    assert cluster.admin("SELECT step_number FROM jr_step_rewards ORDER BY 1", dbname=migrated_db) == [(1,), (2,)]


def test_jr_steps_replay_prints_the_same_classified_message(cluster, ledger_db, spool_path, task_id):
    Spool(spool_path).append(StepEvent.create(task_id, 1, "bash", None, "success", 1))
    env = {k: v for k, v in os.environ.items() if k not in LIBPQ_VARS}
    result = subprocess.run(
        [sys.executable, "-m", "jr_step_rewards", "--dsn", f"host=127.0.0.1 port={cluster.port} user=jr_app "
         f"dbname={ledger_db}", "--spool", str(spool_path), "replay"],
        env=dict(env, PGPASSWORD="Wr0ng-secret-pw"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "jr-steps replay: stopped: the server refused login 'jr_app' (" in result.stderr
    assert "check its password" in result.stderr and "database unavailable" not in result.stderr
    assert "Wr0ng-secret-pw" not in result.stdout + result.stderr
