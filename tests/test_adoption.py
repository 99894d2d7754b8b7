"""Adoption in the Jr executor's own loop, against a real PostgreSQL.

AdoptingExecutor is written here in the shape of the loop that adopts the ledger (dereadi/ganuda_ai,
jr_executor/task_executor.py, execute_steps; no code taken from it): steps numbered from 0 by
enumerate, the task id read through getattr, the seed's two calls with step=step, result dicts, a
stop at the first failed critical step. Its LLM re-plans on every retry, so these tests re-plan:
steps inserted, dropped, reordered, reworded and repeated, a crash between an edit and its record,
the database down, a wiring mistake; and they count what a step costs (round trips, spool reads).
A bash step that appends to log.txt makes a duplicate run visible in the file.
"""

import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import _task_ids
from faults import FaultyProxy
from jr_step_rewards import StepRecorder, StepTrackingMixin
from jr_step_rewards.editor import apply_search_replace
from jr_step_rewards.records import step_definition_hash
from jr_step_rewards.runner import run_bash
from jr_step_rewards.spool import Spool


class AdoptingExecutor(StepTrackingMixin):
    """The Jr executor after adoption: it inherits the mixin, sets _current_task_id where the task
    starts and passes step=step to the seed's two calls. by_definition = False is the seed's caller,
    which passes no step."""

    by_definition = True

    def __init__(self, db_config, workdir):
        self.db_config = db_config
        self.workdir = Path(workdir)

    def process_task(self, task_id, steps):
        self._current_task_id = task_id
        return self.execute_steps(steps)

    def execute_steps(self, steps):
        results = []
        for step_index, step in enumerate(steps):
            known_by = {"step": step} if self.by_definition else {}
            task_id = getattr(self, "_current_task_id", None)
            if task_id and self._step_already_succeeded(task_id, step_index, **known_by):
                results.append({"success": True, "skipped": True})
                continue
            started = time.monotonic()
            result = self.execute(step)
            elapsed_ms = int((time.monotonic() - started) * 1000)
            if task_id:
                self._record_step_result(task_id=task_id, step_number=step_index,
                                         step_type=step.get("type", "unknown"),
                                         target_file=step.get("path", step.get("filepath", "")),
                                         result=result, execution_time_ms=elapsed_ms, **known_by)
            results.append(result)
            if not result.get("success") and step.get("critical", True):
                break
        return results

    def execute(self, step):
        if step["type"] == "search_replace":
            args = step["args"]
            return apply_search_replace(str(self.workdir / args["path"]), args["search"], args["replace"])
        if step["type"] == "bash":
            return run_bash(step["command"], step.get("cwd") or str(self.workdir), step.get("timeout", 60))
        return {"success": False, "error": f"no such step type: {step['type']}"}


class SeedCaller(AdoptingExecutor):
    """The same loop before adoption's last line: the seed's calls, with no step."""

    by_definition = False


def edit(path, search, replace, **extra):
    return {"type": "search_replace", "args": {"path": path, "search": search, "replace": replace}, **extra}


def bash(command, **extra):
    return {"type": "bash", "command": command, "timeout": 30, **extra}


def append(word, **extra):
    """A bash step whose every run adds a line to log.txt."""
    return bash(f"echo {word} >> log.txt", **extra)


GATE = bash("test -e go", description="fails until the test creates go: the failure a retry gets past")


def happened(results):
    return ["skipped" if r.get("skipped") else "ran" if r.get("success") else "failed" for r in results]


def ledger_events(cluster, db, task_id, steps):
    """(step number, result, which step) of each event of the task in arrival order; which step is
    the name in steps whose definition the event carries (None when it carries none)."""
    names = {step_definition_hash(step): name for name, step in steps.items()}
    rows = cluster.admin("SELECT step_number, execution_result, step_definition_hash FROM jr_step_attempts"
                         " WHERE task_id = %s ORDER BY id", (task_id,), dbname=db)
    return [(n, result, names.get(h, h)) for n, result, h in rows]


def ledger_rows(cluster, db, task_id, steps):
    """(step number, result, attempts, failed attempts, which step) of each of the task's rows."""
    names = {step_definition_hash(step): name for name, step in steps.items()}
    rows = cluster.admin("SELECT step_number, execution_result, attempts, failed_attempts, step_definition_hash"
                         " FROM jr_step_rewards WHERE task_id = %s ORDER BY step_number", (task_id,), dbname=db)
    return [(*row[:4], names.get(row[4], row[4])) for row in rows]


def definition_successes(cluster, db, task_id, steps):
    names = {step_definition_hash(step): name for name, step in steps.items()}
    rows = cluster.admin("SELECT step_definition_hash, successes FROM jr_step_definition_successes"
                         " WHERE task_id = %s", (task_id,), dbname=db)
    return {names.get(h, h): n for h, n in rows}


@pytest.fixture
def make_executor(app_config, spool_path, tmp_path):
    """make_executor(cls=AdoptingExecutor, config=app_config, recorder=StepRecorder): a new
    executor working in tmp_path, its recorder on the test's spool; every recorder closed after."""
    made = []

    def make(cls=AdoptingExecutor, config=None, recorder=StepRecorder):
        ex = cls(config or app_config, tmp_path)
        ex.step_recorder = recorder(config or app_config, spool_path=spool_path)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.step_recorder.close()


def test_a_step_inserted_in_front_runs_and_the_finished_edit_is_skipped_at_its_new_number(
        cluster, ledger_db, make_executor, tmp_path, task_id):
    (tmp_path / "app.py").write_text("x = 0\n")
    steps = {"edit": edit("app.py", "x = 0\n", "x = 1\n"), "log": append("log"), "gate": GATE, "new": append("new")}
    ex = make_executor()
    assert happened(ex.process_task(task_id, [steps["edit"], steps["log"], steps["gate"]])) == ["ran", "ran", "failed"]

    (tmp_path / "go").touch()
    replanned = [steps["new"], steps["edit"], steps["log"], steps["gate"]]  # the in-process retry's new plan
    assert happened(ex.process_task(task_id, replanned)) == ["ran", "skipped", "skipped", "ran"]
    assert (tmp_path / "app.py").read_text() == "x = 1\n"
    assert (tmp_path / "log.txt").read_text() == "log\nnew\n", "the new step ran once, the finished one not again"
    assert ledger_events(cluster, ledger_db, task_id, steps) == [
        (0, "pending", "edit"), (0, "success", "edit"), (1, "pending", "log"), (1, "success", "log"),
        (2, "pending", "gate"), (2, "failed", "gate"),
        (0, "pending", "new"), (0, "success", "new"), (3, "pending", "gate"), (3, "success", "gate")]


@pytest.mark.parametrize(("replanned", "expected"), [
    (["edit", "gate", "after"], ["skipped", "ran", "ran"]),
    (["after", "gate", "log", "edit"], ["ran", "ran", "skipped", "skipped"]),
], ids=["a-finished-step-dropped", "reordered"])
def test_a_dropped_or_reordered_plan_skips_finished_steps_wherever_they_stand_and_runs_the_rest(
        cluster, ledger_db, make_executor, tmp_path, task_id, replanned, expected):
    (tmp_path / "app.py").write_text("x = 0\n")
    steps = {"edit": edit("app.py", "x = 0\n", "x = 1\n"), "log": append("log"), "gate": GATE,
             "after": append("after")}
    first = make_executor()
    plan = [steps["edit"], steps["log"], steps["gate"], steps["after"]]
    assert happened(first.process_task(task_id, plan)) == ["ran", "ran", "failed"]

    (tmp_path / "go").touch()
    retry = make_executor()  # the dead-letter queue's rerun: another executor, the plan extracted anew
    assert happened(retry.process_task(task_id, [steps[name] for name in replanned])) == expected
    assert (tmp_path / "app.py").read_text() == "x = 1\n"
    assert (tmp_path / "log.txt").read_text() == "log\nafter\n"
    assert definition_successes(cluster, ledger_db, task_id, steps) == {"edit": 1, "log": 1, "gate": 1, "after": 1}


def test_a_reworded_step_at_the_same_number_runs(cluster, ledger_db, make_executor, tmp_path, task_id):
    (tmp_path / "app.py").write_text("x = 0\n")
    steps = {"edit": edit("app.py", "x = 0\n", "x = 1\n"), "log": append("v1"), "gate": GATE,
             "edit reworded": edit("app.py", "x = 1\n", "x = 2\n"), "log reworded": append("v2")}
    ex = make_executor()
    assert happened(ex.process_task(task_id, [steps["edit"], steps["log"], steps["gate"]])) == ["ran", "ran", "failed"]

    (tmp_path / "go").touch()
    reworded = [steps["edit reworded"], steps["log reworded"], steps["gate"]]
    assert happened(ex.process_task(task_id, reworded)) == ["ran", "ran", "ran"]
    assert (tmp_path / "app.py").read_text() == "x = 2\n"
    assert (tmp_path / "log.txt").read_text() == "v1\nv2\n"
    assert [(n, result, which) for n, result, _, _, which in ledger_rows(cluster, ledger_db, task_id, steps)] == [
        (0, "success", "edit reworded"), (1, "success", "log reworded"), (2, "success", "gate")]


def test_the_same_step_twice_in_a_plan_runs_twice_and_a_retry_skips_both(cluster, ledger_db, make_executor, tmp_path,
                                                                         task_id):
    (tmp_path / "app.py").write_text("x = 0\n")
    tests_before = append("tested", description="run the tests before the edit")
    tests_after = append("tested", description="run them again after it", timeout=120)
    assert step_definition_hash(tests_before) == step_definition_hash(tests_after), "one definition, twice"
    steps = {"tests": tests_before, "edit": edit("app.py", "x = 0\n", "x = 1\n"), "gate": GATE, "new": append("new")}
    ex = make_executor()
    plan = [tests_before, steps["edit"], tests_after, GATE]
    assert happened(ex.process_task(task_id, plan)) == ["ran", "ran", "ran", "failed"]
    assert (tmp_path / "log.txt").read_text() == "tested\ntested\n", "the second occurrence ran in the same attempt"

    (tmp_path / "go").touch()
    replanned = [steps["new"], tests_before, steps["edit"], tests_after, GATE]
    assert happened(ex.process_task(task_id, replanned)) == ["ran", "skipped", "skipped", "skipped", "ran"]
    assert (tmp_path / "log.txt").read_text() == "tested\ntested\nnew\n"
    assert definition_successes(cluster, ledger_db, task_id, steps) == {"tests": 2, "edit": 1, "gate": 1, "new": 1}


def test_the_seeds_callers_without_a_step_still_skip_by_number(cluster, ledger_db, make_executor, tmp_path, task_id):
    (tmp_path / "app.py").write_text("x = 0\n")
    plan = [edit("app.py", "x = 0\n", "x = 1\n"), append("log"), GATE]
    ex = make_executor(SeedCaller)
    assert happened(ex.process_task(task_id, plan)) == ["ran", "ran", "failed"]
    (tmp_path / "go").touch()
    assert happened(ex.process_task(task_id, plan)) == ["skipped", "skipped", "ran"]
    assert (tmp_path / "app.py").read_text() == "x = 1\n"
    assert (tmp_path / "log.txt").read_text() == "log\n"
    assert ledger_events(cluster, ledger_db, task_id, {}) == [
        (0, "success", None), (1, "success", None), (2, "failed", None), (2, "success", None)], \
        "the seed's events: outcomes only, by number, with no definition"
    hashes = cluster.admin("SELECT step_number, step_type, step_content_hash FROM jr_step_rewards WHERE task_id = %s"
                           " ORDER BY step_number", (task_id,), dbname=ledger_db)
    assert hashes == [(n, kind, StepRecorder.content_hash(task_id, n, kind, ""))
                      for n, kind in enumerate(["search_replace", "bash", "bash"])], "the seed's hash"



def test_a_step_whose_type_is_null_has_its_outcome_recorded_like_its_beginning(
        cluster, ledger_db, make_executor, spool_path, task_id):
    """An LLM's JSON may say "type": null: the loop then passes step_type=None, which the ledger
    refuses; the mixin takes the type from the step, as begin_step did, so the outcome is not lost."""
    ex = make_executor()
    assert happened(ex.process_task(task_id, [{"type": None, "command": "true"}])) == ["failed"]
    assert cluster.admin("SELECT step_number, step_type, execution_result, error_detail FROM jr_step_attempts"
                         " WHERE task_id = %s ORDER BY id", (task_id,), dbname=ledger_db) == [
        (0, "unknown", "pending", None), (0, "unknown", "failed", "no such step type: None")]
    assert not spool_path.with_name("spool.jsonl.rejected").exists()

# A step that adds a method in front of the one it searches for: its replacement contains its search
# text, so an editor that applied it twice would add the method twice.
METHOD_EDIT = edit("app.py", "    def execute(self):\n",
                   "    def record(self):\n        pass\n\n    def execute(self):\n")
APP_SOURCE = "class App:\n    def execute(self):\n        pass\n"

KILLED_AFTER_THE_EDIT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    import test_adoption
    from jr_step_rewards import StepRecorder
    from jr_step_rewards.editor import apply_search_replace

    def apply_then_die(*args):
        apply_search_replace(*args)
        os.kill(os.getpid(), signal.SIGKILL)  # the edit is on disk; its outcome is never recorded

    test_adoption.apply_search_replace = apply_then_die
    config, workdir, spool, task_id, steps = eval(sys.argv[1])
    ex = test_adoption.AdoptingExecutor(config, workdir)
    ex.step_recorder = StepRecorder(config, spool_path=spool)
    ex.process_task(task_id, steps)
""")


def test_an_edit_applied_but_never_recorded_is_not_applied_twice_by_a_replanned_retry(
        cluster, ledger_db, app_config, make_executor, tmp_path, spool_path, task_id):
    path = tmp_path / "app.py"
    path.write_text(APP_SOURCE)
    steps = {"edit": METHOD_EDIT, "after": append("after"), "new": append("new")}
    args = repr((app_config, str(tmp_path), str(spool_path), task_id, [steps["edit"], steps["after"]]))
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_THE_EDIT, args, str(Path(__file__).parent)],
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert path.read_text().count("def record") == 1, "the edit was applied"
    assert ledger_events(cluster, ledger_db, task_id, steps) == [(0, "pending", "edit")], "and never recorded"

    ex = make_executor()
    results = ex.process_task(task_id, [steps["new"], steps["edit"], steps["after"]])
    assert happened(results) == ["ran", "ran", "ran"]
    assert results[1]["changed"] is False, "found in place, file untouched"
    assert path.read_text() == APP_SOURCE.replace("    def execute", "    def record(self):\n        pass\n\n"
                                                                     "    def execute")
    assert (tmp_path / "log.txt").read_text() == "new\nafter\n"
    assert definition_successes(cluster, ledger_db, task_id, steps) == {"new": 1, "edit": 1, "after": 1}


def test_database_down_spooled_successes_count_by_definition_and_the_replay_is_exact(
        cluster, ledger_db, app_config, down_config, make_executor, tmp_path, spool_path, task_id):
    (tmp_path / "app.py").write_text("x = 0\n")
    steps = {"edit": edit("app.py", "x = 0\n", "x = 1\n"), "log": append("log"), "gate": GATE, "new": append("new")}
    first = make_executor(config=down_config)
    assert happened(first.process_task(task_id, [steps["edit"], steps["log"], steps["gate"]])) == \
        ["ran", "ran", "failed"]

    (tmp_path / "go").touch()
    retry = make_executor(config=down_config)
    replanned = [steps["new"], steps["edit"], steps["log"], steps["gate"]]
    assert happened(retry.process_task(task_id, replanned)) == ["ran", "skipped", "skipped", "ran"]
    assert (tmp_path / "log.txt").read_text() == "log\nnew\n"
    assert ledger_events(cluster, ledger_db, task_id, steps) == [], "all of it waits in the spool"

    online = StepRecorder(app_config, spool_path=spool_path)
    counts = online.replay()
    online.close()
    assert (counts["recorded"], counts["stale"], counts["duplicate"], counts["remaining"]) == (10, 0, 0, 0)
    assert ledger_events(cluster, ledger_db, task_id, steps) == [
        (0, "pending", "edit"), (0, "success", "edit"), (1, "pending", "log"), (1, "success", "log"),
        (2, "pending", "gate"), (2, "failed", "gate"),
        (0, "pending", "new"), (0, "success", "new"), (3, "pending", "gate"), (3, "success", "gate")]
    assert ledger_rows(cluster, ledger_db, task_id, steps) == [
        (0, "success", 2, 0, "new"), (1, "success", 1, 0, "log"), (2, "failed", 1, 1, "gate"),
        (3, "success", 1, 0, "gate")]
    assert definition_successes(cluster, ledger_db, task_id, steps) == {"edit": 1, "log": 1, "gate": 1, "new": 1}
    [(events, distinct)] = cluster.admin("SELECT count(*), count(DISTINCT event_id) FROM jr_step_attempts"
                                         " WHERE task_id = %s", (task_id,), dbname=ledger_db)
    assert events == distinct == 10


def test_database_lost_between_attempts_of_one_process_the_finished_steps_are_still_skipped(
        cluster, ledger_db, app_config, make_executor, tmp_path, task_id):
    proxy = FaultyProxy("127.0.0.1", cluster.port)
    try:
        ex = make_executor(config=dict(app_config, port=proxy.port))
        steps = {"log": append("log"), "gate": GATE, "new": append("new")}
        assert happened(ex.process_task(task_id, [steps["log"], steps["gate"]])) == ["ran", "failed"]
        assert ex.step_recorder.spool.is_empty(), "attempt 1 reached the ledger"
        proxy.set_mode("drop")
        (tmp_path / "go").touch()
        assert happened(ex.process_task(task_id, [steps["new"], steps["log"], steps["gate"]])) == \
            ["ran", "skipped", "ran"], "the success this process recorded counts, though the ledger cannot answer"
    finally:
        proxy.close()
    assert (tmp_path / "log.txt").read_text() == "log\nnew\n"


class Unwired(AdoptingExecutor):
    """The executor as found: it inherits the mixin and never sets _current_task_id."""

    def process_task(self, task_id, steps):
        return self.execute_steps(steps)


class CallCountingRecorder(StepRecorder):
    calls = 0

    def _call(self, job):
        self.calls += 1
        return super()._call(job)


def test_an_executor_that_never_sets_the_task_id_says_so_once_and_tracks_nothing(
        make_executor, tmp_path, spool_path, task_id, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    ex = make_executor(Unwired, recorder=CallCountingRecorder)
    plan = [append("one"), append("two"), append("three")]
    assert happened(ex.process_task(task_id, plan)) == ["ran", "ran", "ran"]
    assert happened(ex.process_task(task_id, plan)) == ["ran", "ran", "ran"], "nothing tracked, nothing skipped"
    assert (tmp_path / "log.txt").read_text() == "one\ntwo\nthree\n" * 2

    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert len(said) == 1, said
    assert said[0][0] == logging.ERROR and "Unwired._current_task_id is not set" in said[0][1]
    assert ex.step_recorder.calls == 0 and not spool_path.exists(), "tracks nothing"
    another = make_executor(Unwired, recorder=CallCountingRecorder)
    another.process_task(task_id, plan[:1])
    assert len(caplog.records) == 2, "once per executor instance"


BASH = bash("pytest -q", cwd="/srv/app", timeout=300, description="run the tests", critical=True)
EDIT = edit("app.py", "x = 0\n", "x = 1\n", description="set x", critical=False)


@pytest.mark.parametrize(("step", "change", "same"), [
    (BASH, {"timeout": 30}, True),
    (BASH, {"description": "run the suite again"}, True),
    (BASH, {"critical": False}, True),
    (EDIT, {"description": None}, True),
    (EDIT, {"args": {**EDIT["args"], "timeout": 5}}, True),
    (BASH, {"command": "pytest -q -x"}, False),
    (BASH, {"cwd": "/srv/other"}, False),
    (BASH, {"type": "sql"}, False),
    (EDIT, {"args": {**EDIT["args"], "path": "lib.py"}}, False),
    (EDIT, {"args": {**EDIT["args"], "search": "x = 00\n"}}, False),
    (EDIT, {"args": {**EDIT["args"], "replace": "x = 2\n"}}, False),
])
def test_only_what_a_step_does_changes_its_fingerprint(step, change, same):
    changed = {**step, **change}
    assert (step_definition_hash(changed) == step_definition_hash(step)) is same
    reordered = dict(reversed(list(changed.items())))
    assert step_definition_hash(reordered) == step_definition_hash(changed), "key order never matters"


class StatementCountingRecorder(StepRecorder):
    """A StepRecorder whose connections note the ledger function of every statement they send:
    one execute is one simple-query message, one round trip."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent, self.connections = [], 0

    def _connect(self):
        conn = super()._connect()
        self.connections += 1
        sent, base = self.sent, conn.cursor_factory

        class Counting(base):
            def execute(self, query, vars=None):
                sent.append(query.split("(")[0].split(".")[-1])
                return super().execute(query, vars)

        conn.cursor_factory = Counting
        return conn


def test_a_step_that_runs_costs_two_round_trips_and_a_skipped_step_one(make_executor, tmp_path, task_id):
    (tmp_path / "app.py").write_text("x = 0\n")
    steps = {"edit": edit("app.py", "x = 0\n", "x = 1\n"), "log": append("log"), "new": append("new")}
    ex = make_executor(recorder=StatementCountingRecorder)
    sent = ex.step_recorder.sent
    assert happened(ex.process_task(task_id, [steps["edit"], steps["log"], GATE])) == ["ran", "ran", "failed"]
    assert sent == ["begin_step", "record_step"] * 3
    del sent[:]

    (tmp_path / "go").touch()
    replanned = [steps["new"], steps["edit"], steps["log"], GATE]
    assert happened(ex.process_task(task_id, replanned)) == ["ran", "skipped", "skipped", "ran"]
    assert sent == ["begin_step", "record_step", "begin_step", "begin_step", "begin_step", "record_step"]
    assert ex.step_recorder.connections == 1


def test_the_hot_path_reads_no_spool_while_it_is_empty_and_the_database_answers(
        cluster, ledger_db, make_executor, tmp_path, spool_path, task_id, monkeypatch):
    seed_task_id = next(_task_ids)
    reads = []

    def counting(name, real):
        def counted(*args, **kwargs):
            reads.append(name)
            return real(*args, **kwargs)
        return counted

    for name in ("_lines", "latest", "successes", "events", "count", "replay"):
        monkeypatch.setattr(Spool, name, counting(name, getattr(Spool, name)))
    (tmp_path / "app.py").write_text("x = 0\n")
    steps = {"edit": edit("app.py", "x = 0\n", "x = 1\n"), "log": append("log"), "new": append("new")}

    ex = make_executor()
    assert happened(ex.process_task(task_id, [steps["edit"], steps["log"], GATE])) == ["ran", "ran", "failed"]
    (tmp_path / "go").touch()
    replanned = [steps["new"], steps["edit"], steps["log"], GATE]
    assert happened(ex.process_task(task_id, replanned)) == ["ran", "skipped", "skipped", "ran"]
    seed = make_executor(SeedCaller)
    assert happened(seed.process_task(seed_task_id, [steps["log"], GATE])) == ["ran", "ran"]
    assert happened(seed.process_task(seed_task_id, [steps["log"], GATE])) == ["skipped", "skipped"]

    assert reads == [], "the spool was read on the hot path"
    assert not spool_path.exists(), "and it stayed empty: everything reached the ledger"
    assert len(ledger_events(cluster, ledger_db, task_id, steps)) == 10
