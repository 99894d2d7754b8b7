"""Faults injected into a real PostgreSQL while a 20-step task runs. Each scenario proves the three
promises at once: the task completes; the time the recorder added stays under a stated bound; and
after recovery the ledger holds exactly the expected rows and attempts, nothing lost, nothing
duplicated. The added times are written to tests/.results/faults.json for the README's figures.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import free_port
from faults import FaultyProxy
from jr_step_rewards import StepRecorder, TaskExecutor
from jr_step_rewards.instructions import Step
from jr_step_rewards.records import StepEvent
from jr_step_rewards.spool import Spool
from pgcluster import Cluster

RESULTS = Path(__file__).resolve().parent / ".results" / "faults.json"
PASSWORD = "fault-Pw 77!x"
STEPS = 20
COOLDOWN = 1.0  # short, so recovery in these tests is quick; the default is 5 s


class TimedRecorder(StepRecorder):
    """A StepRecorder that adds up the time the executor spent inside it."""

    added = 0.0

    def _timed(self, method, *args):
        started = time.monotonic()
        try:
            return method(*args)
        finally:
            self.added += time.monotonic() - started

    def record_step(self, *args):
        return self._timed(super().record_step, *args)

    def step_succeeded(self, *args):
        return self._timed(super().step_succeeded, *args)

    def begin_step(self, *args):
        return self._timed(super().begin_step, *args)


class FaultEnv:
    """A cluster of the faults' own (they stop and restart it), a migrated ledger and a login that
    is only a member of jr_executor."""

    def __init__(self):
        self.cluster = Cluster(port=free_port(), listen="127.0.0.1")
        self.cluster.start()
        self.db = self.cluster.create_database()
        assert self.cluster.migrate(self.db).returncode == 0
        self.cluster.admin("CREATE ROLE jr_fault_app LOGIN PASSWORD %s IN ROLE jr_executor", (PASSWORD,))
        self.config = {"host": "127.0.0.1", "port": self.cluster.port, "user": "jr_fault_app",
                       "password": PASSWORD, "dbname": self.db}
        self.next_task = 7000

    def sql(self, query, params=None):
        return self.cluster.admin(query, params, dbname=self.db)

    def task_id(self):
        self.next_task += 1
        return self.next_task


@pytest.fixture(scope="module")
def env():
    e = FaultEnv()
    yield e
    e.cluster.destroy()


def record_figure(name, added, bound):
    """Keep the measured added time for the README's Reliability section."""
    RESULTS.parent.mkdir(exist_ok=True)
    figures = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    figures[name] = {"added_s": round(added, 3), "bound_s": bound}
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


def twenty_steps(workdir):
    """Ten edits of ten lines of one file, each followed by a bash step."""
    (workdir / "app.py").write_text("".join(f"line_{n} = 0\n" for n in range(1, 11)))
    steps = []
    for n in range(1, 11):
        steps.append(Step(2 * n - 1, "search_replace", "app.py", f"line_{n} = 0\n", f"line_{n} = 1\n"))
        steps.append(Step(2 * n, "bash", command=f"grep -q '^line_{n} = 1$' app.py"))
    return steps


def run(env, workdir, spool, config=None, on_line=None, **options):
    """Run the 20-step task; return (summary, recorder)."""
    recorder = TimedRecorder(config or env.config, spool_path=spool, cooldown=COOLDOWN, **options)
    ex = TaskExecutor(workdir=workdir, say=on_line or (lambda line: None))
    ex.step_recorder = recorder
    task_id = env.task_id()
    summary = ex.run_task(task_id, twenty_steps(workdir))
    return task_id, summary, recorder


def recover(recorder, timeout=30):
    """Wait for the breaker to close, then deliver whatever the spool still holds."""
    deadline = time.monotonic() + timeout
    while True:
        recorder.step_succeeded(0, 0)  # a call: it lets the recorder probe the database in the background
        if not recorder.breaker_open and recorder.replay(timeout=10)["remaining"] == 0:
            break
        assert time.monotonic() < deadline, "the recorder did not recover"
        time.sleep(0.1)
    recorder.close()


def assert_ledger_exact(env, task_id, extra_history=0):
    """20 steps, each succeeded once; 40 history events (pending + success per step), each once."""
    rows = env.sql("SELECT step_number, execution_result, attempts, failed_attempts FROM jr_step_rewards"
                   " WHERE task_id = %s ORDER BY step_number", (task_id,))
    assert rows == [(n, "success", 1, 0) for n in range(1, STEPS + 1)]
    [(events, distinct)] = env.sql("SELECT count(*), count(DISTINCT event_id) FROM jr_step_attempts"
                                   " WHERE task_id = %s", (task_id,))
    assert (events, distinct) == (2 * STEPS + extra_history, 2 * STEPS + extra_history)
    assert env.sql("SELECT count(*) FROM jr_step_attempts WHERE task_id = %s AND execution_result = 'success'",
                   (task_id,)) == [(STEPS,)]


def assert_edits_applied_once(workdir):
    assert (workdir / "app.py").read_text() == "".join(f"line_{n} = 1\n" for n in range(1, 11))


def test_fault_1_database_stopped_before_the_task(env, tmp_path):
    env.cluster.stop()
    try:
        task_id, summary, recorder = run(env, tmp_path, tmp_path / "spool.jsonl")
    finally:
        env.cluster.start()
    assert summary.ran == list(range(1, STEPS + 1)) and not summary.failed
    record_figure("1 database stopped (connection refused)", recorder.added, 1.0)
    assert recorder.added < 1.0, f"the recorder added {recorder.added:.2f} s"
    recover(recorder)
    assert_ledger_exact(env, task_id)
    assert_edits_applied_once(tmp_path)


def test_fault_2_database_restarted_in_the_middle_of_the_task(env, tmp_path):
    def restart_after_step_10(line):
        if line.startswith("  step 10 "):
            env.cluster.stop()
            env.cluster.start()

    task_id, summary, recorder = run(env, tmp_path, tmp_path / "spool.jsonl", on_line=restart_after_step_10)
    assert summary.ran == list(range(1, STEPS + 1)) and not summary.failed
    record_figure("2 database restarted mid-task", recorder.added, 1.0)
    assert recorder.added < 1.0, f"the recorder added {recorder.added:.2f} s"
    recover(recorder)
    assert_ledger_exact(env, task_id)


def test_fault_3_a_peer_that_accepts_and_then_goes_silent(env, tmp_path):
    proxy = FaultyProxy("127.0.0.1", env.cluster.port)

    def silence_after_step_5(line):
        if line.startswith("  step 5 "):
            proxy.set_mode("silent")

    try:
        task_id, summary, recorder = run(env, tmp_path, tmp_path / "spool.jsonl",
                                         config=dict(env.config, port=proxy.port), on_line=silence_after_step_5)
        assert summary.ran == list(range(1, STEPS + 1)) and not summary.failed
        bound = recorder.deadline + 0.5
        record_figure("3 peer goes silent (loopback proxy)", recorder.added, bound)
        assert recorder.added < bound, f"the recorder added {recorder.added:.2f} s"
        proxy.set_mode("forward")
        recover(recorder)
    finally:
        proxy.close()
    assert_ledger_exact(env, task_id)


def lock_fault(env, tmp_path, label, after_call=lambda: None):
    """Fault 4: another session holds a lock on one step's row while the task runs. after_call runs
    while the lock is still held."""
    task_id = env.next_task + 1  # the id run() will use
    for n in range(1, STEPS + 1):  # an earlier attempt left every step pending
        env.sql("SELECT record_step(%s, %s, 'x', NULL, 'pending', NULL)", (task_id, n))
    blocker = env.cluster.connect(env.db)
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT 1 FROM jr_step_rewards WHERE task_id = %s AND step_number = 7 FOR UPDATE", (task_id,))
        ran_id, summary, recorder = run(env, tmp_path, tmp_path / "spool.jsonl", statement_timeout_ms=1500)
        after_call()
    finally:
        blocker.rollback()
        blocker.close()
    assert ran_id == task_id
    assert summary.ran == list(range(1, STEPS + 1)) and not summary.failed
    bound = 1.0  # lock_timeout (0.5 s) and slack; without it statement_timeout (1.5 s) would be the bound
    record_figure(label, recorder.added, bound)
    assert recorder.added < bound, f"the recorder added {recorder.added:.2f} s"
    recover(recorder)
    assert_ledger_exact(env, task_id, extra_history=STEPS)


def slow_statement_fault(env, tmp_path, label, after_call=lambda: None):
    """Fault 5: one step's record runs long (a test-only trigger that sleeps 5 s). after_call runs
    while the trigger is still in place."""
    env.sql("""
        CREATE TABLE fault_slow (task_id integer);
        GRANT SELECT ON fault_slow TO PUBLIC;  -- the trigger runs as the ledger's owner, whoever that is
        CREATE FUNCTION fault_sleep() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT FROM public.fault_slow s WHERE s.task_id = NEW.task_id) AND NEW.step_number = 7 THEN
                PERFORM pg_sleep(5);
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER fault_sleep BEFORE INSERT ON jr_step_attempts FOR EACH ROW EXECUTE FUNCTION fault_sleep();
    """)
    env.sql("INSERT INTO fault_slow VALUES (%s)", (env.next_task + 1,))
    try:
        task_id, summary, recorder = run(env, tmp_path, tmp_path / "spool.jsonl", statement_timeout_ms=500)
        after_call()
        assert summary.ran == list(range(1, STEPS + 1)) and not summary.failed
        bound = 1.0  # statement_timeout (0.5 s) and slack; without it the deadline (2 s) would be the bound
        record_figure(label, recorder.added, bound)
        assert recorder.added < bound, f"the recorder added {recorder.added:.2f} s"
        env.sql("DELETE FROM fault_slow")
        recover(recorder)
    finally:
        env.sql("DROP TRIGGER fault_sleep ON jr_step_attempts; DROP FUNCTION fault_sleep(); DROP TABLE fault_slow")
    assert_ledger_exact(env, task_id)


def test_fault_4_another_session_holds_a_lock_on_the_steps_row(env, tmp_path):
    lock_fault(env, tmp_path, "4 lock held on the step's row")


def test_fault_5_a_statement_that_runs_long(env, tmp_path):
    slow_statement_fault(env, tmp_path, "5 statement runs long (sleeping trigger)")


KILL_AFTER_EDIT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from test_faults import twenty_steps
    from pathlib import Path
    from jr_step_rewards import StepRecorder, TaskExecutor, editor, executor

    def apply_and_die_on_line_6(path, search, replace):
        result = editor.apply_search_replace(path, search, replace)
        if search == "line_6 = 0\\n":
            os.kill(os.getpid(), signal.SIGKILL)  # the edit is on disk, its outcome is not recorded
        return result

    executor.apply_search_replace = apply_and_die_on_line_6
    config, workdir, spool, task_id = eval(sys.argv[1])
    ex = TaskExecutor(workdir=workdir, say=lambda line: None)
    ex.step_recorder = StepRecorder(config, spool_path=spool)
    ex.run_task(task_id, twenty_steps(Path(workdir)))
""")


def test_fault_6_executor_killed_between_an_edit_and_its_record(env, tmp_path):
    task_id = env.task_id()
    args = repr((env.config, str(tmp_path), str(tmp_path / "spool.jsonl"), task_id))
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_EDIT, args, str(Path(__file__).parent)],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert env.sql("SELECT execution_result FROM jr_step_rewards WHERE task_id = %s AND step_number = 11",
                   (task_id,)) == [("pending",)], "killed after step 11's edit, before its record"

    recorder = TimedRecorder(env.config, spool_path=tmp_path / "spool.jsonl", cooldown=COOLDOWN)
    ex = TaskExecutor(workdir=tmp_path, say=lambda line: None)
    ex.step_recorder = recorder
    retry = ex.run_task(task_id, twenty_steps_without_reset(tmp_path))
    recover(recorder)
    assert retry.skipped == list(range(1, 11)) and retry.ran == list(range(11, STEPS + 1))
    assert_edits_applied_once(tmp_path)
    assert_ledger_exact(env, task_id, extra_history=1)  # step 11's pending from the killed run


def twenty_steps_without_reset(workdir):
    """The same steps, without rewriting the file the killed run left."""
    saved = (workdir / "app.py").read_text()
    steps = twenty_steps(workdir)
    (workdir / "app.py").write_text(saved)
    return steps


KILL_IN_APPEND = textwrap.dedent("""
    import os, signal, sys, types
    sys.path.insert(0, sys.argv[2])
    from test_faults import twenty_steps
    from pathlib import Path
    from jr_step_rewards import StepRecorder, TaskExecutor, spool

    appends = [0]

    def write_then_die_on_the_21st_append(fd, data):
        appends[0] += 1
        if appends[0] == 21:
            os.write(fd, data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)  # half a line on disk
        return os.write(fd, data)

    # Only the spool's own writes go through the fault (one os.write per append).
    spool.os = types.ModuleType("os")
    spool.os.__dict__.update(os.__dict__, write=write_then_die_on_the_21st_append)
    config, workdir, spool_path, task_id = eval(sys.argv[1])
    ex = TaskExecutor(workdir=workdir, say=lambda line: None)
    ex.step_recorder = StepRecorder(config, spool_path=spool_path)
    ex.run_task(task_id, twenty_steps(Path(workdir)))
""")


def test_fault_7_executor_killed_while_appending_to_the_spool(env, tmp_path, caplog):
    task_id = env.task_id()
    spool = tmp_path / "spool.jsonl"
    down = dict(env.config, port=free_port())
    args = repr((down, str(tmp_path), str(spool), task_id))
    killed = subprocess.run([sys.executable, "-c", KILL_IN_APPEND, args, str(Path(__file__).parent)],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not spool.read_bytes().endswith(b"\n"), "the spool ends in a torn line"
    assert len(spool.read_bytes().splitlines()) == 21, "20 whole events (steps 1 to 10), then the torn one"

    # Another executor sharing the spool goes on appending after the crash: its record must not be
    # swallowed by the torn line.
    other_task = env.task_id()
    Spool(spool).append(StepEvent.create(other_task, 1, "bash", None, "success", 1))

    caplog.set_level("WARNING", "jr_step_rewards")
    recorder = TimedRecorder(env.config, spool_path=spool, cooldown=COOLDOWN)
    ex = TaskExecutor(workdir=tmp_path, say=lambda line: None)
    ex.step_recorder = recorder
    retry = ex.run_task(task_id, twenty_steps_without_reset(tmp_path))
    recover(recorder)
    assert any("skipping unreadable line 21" in r.getMessage() for r in caplog.records)
    assert retry.skipped == list(range(1, 11)) and retry.ran == list(range(11, STEPS + 1))
    assert_edits_applied_once(tmp_path)
    assert_ledger_exact(env, task_id)  # step 11's torn pending never counted; the retry's did
    assert env.sql("SELECT execution_result FROM jr_step_rewards WHERE task_id = %s", (other_task,)) == [("success",)]


def test_fault_8_an_older_event_delivered_after_a_newer_one(env, tmp_path):
    task_id = env.task_id()
    spool = tmp_path / "spool.jsonl"
    older = [StepEvent.create(task_id, n, "bash", None, "failed", 9, "an old failure") for n in range(1, STEPS + 1)]
    recorder = TimedRecorder(env.config, spool_path=spool, cooldown=COOLDOWN)
    for n in range(1, STEPS + 1):
        assert recorder.record_step(task_id, n, "bash", None, "success", 1) is True
    for event in older:  # delivered late, as a spool left by another executor would
        recorder.spool.append(event)
    counts = recorder.replay()
    recorder.close()
    assert (counts["stale"], counts["recorded"], counts["remaining"]) == (STEPS, 0, 0)
    assert env.sql("SELECT count(*) FILTER (WHERE execution_result = 'success'), sum(attempts),"
                   " sum(failed_attempts) FROM jr_step_rewards WHERE task_id = %s",
                   (task_id,)) == [(STEPS, 2 * STEPS, STEPS)], "the newer state stays; the late failures count"


@pytest.mark.skipif(os.environ.get("JR_SOAK") is None, reason="part of make soak")
def test_soak_restarts_every_few_steps(env, tmp_path):
    """make soak: the database restarts after every fifth step, over 20 tasks."""
    for _ in range(20):
        def restart_every_fifth(line):
            if line.startswith("  step ") and int(line.split()[1]) % 5 == 0:
                env.cluster.stop()
                env.cluster.start()

        workdir = tmp_path / f"w{env.next_task}"
        workdir.mkdir()
        task_id, summary, recorder = run(env, workdir, tmp_path / "spool.jsonl", on_line=restart_every_fifth)
        assert not summary.failed
        recover(recorder)
        assert_ledger_exact(env, task_id)
