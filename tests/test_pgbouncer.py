"""Behind a real PgBouncer in transaction pooling, without ignore_startup_parameters (bluefin's
setup): the recorder, the mixin and every jr-steps command work, and a call that its timeouts stop
ends on the server too, not only in the client, with every record delivered afterwards."""

import os
import shutil
import subprocess
import sys
import time

import pytest
from jr_step_rewards import StepRecorder, TaskExecutor
from jr_step_rewards.instructions import Step
from jr_step_rewards.records import StepEvent
from jr_step_rewards.spool import Spool
from pgbouncer import PgBouncer
from pgcluster import LIBPQ_VARS, REPO
from test_faults import lock_fault, slow_statement_fault

APP, READER, REWARDER = "jr_pgb_app", "jr_pgb_reader", "jr_pgb_rewarder"
# postgres reaches the cluster through PgBouncer with this password, for make pgtap.
PASSWORDS = {APP: "pgb-App pw 1!", READER: "pgb-Reader pw 2!", REWARDER: "pgb-Rewarder pw 4!",
             "postgres": "pgb-Admin pw 3!"}
DEMO_TASK = REPO / "examples" / "demo" / "task.md"


class BouncerLedger:
    """A migrated ledger in the session's cluster, reached through a PgBouncer by APP (a member of
    jr_executor only), READER (jr_executor and jr_reader, for jr-steps status and stats) and
    REWARDER (jr_rewarder only). It offers what test_faults' helpers use: config, sql(), task_id(),
    next_task."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.db = cluster.create_database()
        result = cluster.migrate(self.db)
        assert result.returncode == 0, result.stderr
        cluster.admin(f"CREATE ROLE {APP} LOGIN PASSWORD %s IN ROLE jr_executor", (PASSWORDS[APP],))
        cluster.admin(f"CREATE ROLE {READER} LOGIN PASSWORD %s IN ROLE jr_executor, jr_reader", (PASSWORDS[READER],))
        cluster.admin(f"CREATE ROLE {REWARDER} LOGIN PASSWORD %s IN ROLE jr_rewarder", (PASSWORDS[REWARDER],))
        self.bouncer = PgBouncer(cluster, PASSWORDS).start()
        self.config = self.bouncer.config(APP, self.db)
        self.next_task = 9000

    def sql(self, query, params=None):
        return self.cluster.admin(query, params, dbname=self.db)

    def task_id(self):
        self.next_task += 1
        return self.next_task

    def cli_env(self):
        """The environment jr-steps runs in: the libpq variables name PgBouncer, the password
        comes from PGPASSWORD, never from the command line."""
        env = {k: v for k, v in os.environ.items() if k not in (*LIBPQ_VARS, "JR_STEP_SPOOL")}
        return dict(env, PGHOST="127.0.0.1", PGPORT=str(self.bouncer.port), PGUSER=READER, PGDATABASE=self.db,
                    PGPASSWORD=PASSWORDS[READER])

    def close(self):
        self.bouncer.stop()
        self.cluster.admin(f"DROP DATABASE {self.db} WITH (FORCE)")
        self.cluster.admin(f"DROP ROLE {APP}, {READER}, {REWARDER}")


@pytest.fixture(scope="module")
def ledger(cluster):
    env = BouncerLedger(cluster)
    yield env
    env.close()


def unfinished_server_calls(env, login):
    """Backends of login that are running a statement, waiting on a lock, or inside a transaction."""
    return env.cluster.admin(
        "SELECT pid, state, wait_event_type, left(query, 120) FROM pg_stat_activity"
        " WHERE usename = %s AND backend_type = 'client backend' AND state IS DISTINCT FROM 'idle'", (login,))


def assert_nothing_left_on_the_server(env, login, within=1.5):
    """Once the client has its answer, the server must be done too: a backend left waiting behind a
    client that gave up holds a server connection (and maybe locks) for as long as it waits. The
    poll allows for a background probe that is still within its own timeouts."""
    deadline = time.monotonic() + within
    while True:
        busy = unfinished_server_calls(env, login)
        if not busy:
            return
        assert time.monotonic() < deadline, f"still running on the server after the call returned: {busy}"
        time.sleep(0.05)


def test_the_recorder_records_and_checks_through_pgbouncer(ledger, spool_path, caplog):
    caplog.set_level("WARNING", "jr_step_rewards")
    task_id = ledger.task_id()
    recorder = StepRecorder(ledger.config, spool_path=spool_path)
    rewards = StepRecorder(ledger.bouncer.config(REWARDER, ledger.db), spool_path=spool_path)
    try:
        assert recorder.record_step(task_id, 1, "bash", None, "pending") is True
        assert recorder.record_step(task_id, 1, "bash", None, "success", 4) is True
        assert recorder.step_succeeded(task_id, 1) is True
        assert recorder.step_succeeded(task_id, 1, recorder.content_hash(task_id, 1, "bash", None)) is True
        assert recorder.step_succeeded(task_id, 2) is False
        assert rewards.set_step_reward(task_id, 1, 0.5, "correct") is True
    finally:
        recorder.close()
        rewards.close()
    assert caplog.records == []
    assert not spool_path.exists(), "nothing had to wait in the spool"
    assert ledger.sql("SELECT step_number, execution_result, attempts, implicit_reward FROM jr_step_rewards"
                      " WHERE task_id = %s", (task_id,)) == [(1, "success", 1, 0.5)]


def test_the_mixin_runs_a_task_through_pgbouncer(ledger, tmp_path, monkeypatch):
    monkeypatch.setenv("JR_STEP_SPOOL", str(tmp_path / "spool.jsonl"))
    (tmp_path / "app.py").write_text("x = 0\n")
    steps = [Step(1, "search_replace", "app.py", "x = 0\n", "x = 1\n"),
             Step(2, "bash", command="grep -q 'x = 1' app.py")]
    task_id = ledger.task_id()
    executor = TaskExecutor(db_config=ledger.config, workdir=tmp_path, say=lambda line: None)
    first = executor.run_task(task_id, steps)
    retry = executor.run_task(task_id, steps)
    executor.step_recorder.close()
    assert (first.ran, first.failed, retry.ran, retry.skipped) == ([1, 2], [], [], [1, 2])
    assert not (tmp_path / "spool.jsonl").exists()
    assert ledger.sql("SELECT step_number, execution_result FROM jr_step_rewards WHERE task_id = %s"
                      " ORDER BY step_number", (task_id,)) == [(1, "success"), (2, "success")]


def test_every_jr_steps_command_works_through_pgbouncer(ledger, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples" / "demo" / "project", work)
    (work / ".service-ready").touch()  # the demo's flaky step succeeds the first time
    spool = tmp_path / "spool.jsonl"
    task_id = ledger.task_id()

    def jr_steps(*args):
        return subprocess.run([sys.executable, "-m", "jr_step_rewards", "--spool", str(spool), *args],
                              env=ledger.cli_env(), capture_output=True, text=True, timeout=120)

    ran = jr_steps("run", str(DEMO_TASK), "--task-id", str(task_id), "--workdir", str(work))
    assert ran.returncode == 0, ran.stderr
    assert f"task {task_id}: done; ran 3, skipped 0 already done" in ran.stdout
    assert ran.stderr == "" and not spool.exists(), "every record reached the ledger directly"

    status = jr_steps("status", "--task-id", str(task_id))
    assert status.returncode == 0, status.stderr
    assert [line.split()[:3] for line in status.stdout.splitlines()[2:]] == [
        ["1", "search_replace", "success"], ["2", "bash", "success"], ["3", "bash", "success"]]

    stats = jr_steps("stats")
    assert stats.returncode == 0, stats.stderr
    assert "search_replace" in stats.stdout and "bash" in stats.stdout

    Spool(spool).append(StepEvent.create(task_id, 4, "bash", None, "success", 1))
    replayed = jr_steps("replay")
    assert replayed.returncode == 0, replayed.stderr
    assert f"spool {spool}: recorded 1, stale 0, duplicate 0, rejected 0, remaining 0" in replayed.stdout
    assert ledger.sql("SELECT count(*) FROM jr_step_rewards WHERE task_id = %s", (task_id,)) == [(4,)]


def test_make_pgtap_runs_through_pgbouncer(ledger):
    env = dict(ledger.cli_env(), PGUSER="postgres", PGPASSWORD=PASSWORDS["postgres"])
    result = subprocess.run([str(REPO / "scripts" / "on-database"), "target", str(REPO / "scripts" / "pgtap.sh")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"where: host=127.0.0.1 port={ledger.bouncer.port} dbname={ledger.db} ")
    assert "All tests successful." in result.stdout and "Result: PASS" in result.stdout


def test_fault_4_a_lock_held_on_the_steps_row_ends_on_the_server_too(ledger, tmp_path):
    lock_fault(ledger, tmp_path, "4 lock held on the step's row, through PgBouncer",
               after_call=lambda: assert_nothing_left_on_the_server(ledger, APP))


def test_fault_5_a_statement_that_runs_long_ends_on_the_server_too(ledger, tmp_path):
    # The trigger would sleep for 5 s: the server must have given up long before.
    slow_statement_fault(ledger, tmp_path, "5 statement runs long (sleeping trigger), through PgBouncer",
                         after_call=lambda: assert_nothing_left_on_the_server(ledger, APP))


def test_a_startup_parameter_the_pooler_refuses_is_told_with_its_fix(ledger, spool_path, caplog):
    caplog.set_level("WARNING", "jr_step_rewards")
    task_id = ledger.task_id()
    recorder = StepRecorder(dict(ledger.config, options="-c search_path=public"), spool_path=spool_path)
    assert recorder.record_step(task_id, 1, "bash", None, "success", 1) is False
    recorder.close()
    [report] = caplog.records
    assert report.levelname == "ERROR"
    assert "the server refused the startup parameter 'options'" in report.getMessage()
    assert "remove 'options' from db_config (or PGOPTIONS), or add it to ignore_startup_parameters" \
        in report.getMessage()
    assert recorder.spool.count() == 1, "spooled, to replay once the settings are fixed"
    fixed = StepRecorder(ledger.config, spool_path=spool_path)
    assert fixed.replay()["recorded"] == 1
    fixed.close()
