"""The reference executor against a real PostgreSQL: every step timed and recorded, a retry that
skips what already succeeded, no duplicate after a crash, and a task that finishes at full speed
when the database is down."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import history, state
from jr_step_rewards import StepRecorder, TaskExecutor
from jr_step_rewards.instructions import Step, parse_instructions
from pgcluster import REPO

SEED_EDIT = parse_instructions((REPO / "tests" / "fixtures" / "seed_instruction.md").read_text())[2]
EXECUTOR_SOURCE = "class TaskExecutor:\n" + SEED_EDIT.search + "        pass\n"
FLAKY = 'if [ ! -e .ready ]; then touch .ready; echo "not ready yet" >&2; exit 1; fi'


def seed_task(workdir):
    """The seed's own step 3 edit, a bash step that fails the first time, and a check."""
    (workdir / "task_executor.py").write_text(EXECUTOR_SOURCE)
    return [
        Step(1, "search_replace", "task_executor.py", SEED_EDIT.search, SEED_EDIT.replace),
        Step(2, "bash", command=FLAKY),
        Step(3, "bash", command="test $(grep -c 'def _record_step_result' task_executor.py) -eq 1"),
    ]


def executor(config, workdir, spool_path, lines=None, **recorder_options):
    ex = TaskExecutor(workdir=workdir, say=(lines.append if lines is not None else lambda line: None))
    ex.step_recorder = StepRecorder(config, spool_path=spool_path, **recorder_options)
    return ex


def test_both_step_types_are_recorded_with_times_and_results(cluster, ledger_db, app_config, tmp_path,
                                                             spool_path, task_id):
    steps = seed_task(tmp_path)
    ex = executor(app_config, tmp_path, spool_path)
    summary = ex.run_task(task_id, steps)
    ex.step_recorder.close()

    assert (summary.ran, summary.skipped, summary.failed) == ([1, 2], [], [2])
    assert summary.error == "exit 1: not ready yet"
    rows = cluster.admin("SELECT step_number, step_type, target_file, execution_result, execution_time_ms,"
                         " error_detail, step_content_hash FROM jr_step_rewards WHERE task_id = %s"
                         " ORDER BY step_number", (task_id,), dbname=ledger_db)
    assert [r[:4] for r in rows] == [(1, "search_replace", "task_executor.py", "success"), (2, "bash", None, "failed")]
    assert all(isinstance(r[4], int) and r[4] >= 0 for r in rows), "every step is timed"
    assert rows[1][5] == "exit 1: not ready yet"
    assert rows[0][6] == StepRecorder.content_hash(task_id, 1, "search_replace", "task_executor.py")
    assert history(cluster, ledger_db, task_id) == [(1, 1, "pending"), (1, 1, "success"),
                                                    (2, 1, "pending"), (2, 1, "failed")]
    assert ex._current_task_id == task_id and ex._current_step_number is None


def test_the_retry_skips_finished_steps_and_the_file_has_no_duplicate(cluster, ledger_db, app_config, tmp_path,
                                                                      spool_path, task_id):
    steps = seed_task(tmp_path)
    lines = []
    ex = executor(app_config, tmp_path, spool_path, lines)
    assert ex.run_task(task_id, steps).failed == [2]
    retry = ex.run_task(task_id, steps)
    ex.step_recorder.close()

    assert (retry.ran, retry.skipped, retry.failed) == ([2, 3], [1], [])
    assert "  step 1 search_replace task_executor.py: skipped, already succeeded" in lines
    assert (tmp_path / "task_executor.py").read_text().count("def _record_step_result") == 1
    assert [r[:3] for r in state(cluster, ledger_db, task_id)] == [(1, "success", 1), (2, "success", 2),
                                                                   (3, "success", 1)]


def test_a_step_whose_definition_changed_runs_again(cluster, ledger_db, app_config, tmp_path, spool_path, task_id):
    (tmp_path / "a.txt").write_text("x\n")
    ex = executor(app_config, tmp_path, spool_path)
    assert ex.run_task(task_id, [Step(1, "bash", command="true")]).ran == [1]
    moved = Step(1, "search_replace", "a.txt", "x\n", "y\n")
    summary = ex.run_task(task_id, [moved])
    ex.step_recorder.close()
    assert (summary.ran, summary.skipped) == ([1], [])
    assert (tmp_path / "a.txt").read_text() == "y\n"


CRASHING_EXECUTOR = textwrap.dedent("""
    import os, signal, sys
    from jr_step_rewards import StepRecorder, TaskExecutor, editor, executor
    from jr_step_rewards.instructions import Step

    def apply_then_die(*args):
        result = editor.apply_search_replace(*args)
        os.kill(os.getpid(), signal.SIGKILL)  # the edit is on disk; its outcome never gets recorded

    executor.apply_search_replace = apply_then_die
    config, workdir, spool, task_id, search, replace = eval(sys.argv[1])
    ex = TaskExecutor(workdir=workdir)
    ex.step_recorder = StepRecorder(config, spool_path=spool)
    ex.run_task(task_id, [Step(1, "search_replace", "task_executor.py", search, replace)])
""")


def test_a_crash_between_the_edit_and_its_record_duplicates_nothing(cluster, ledger_db, app_config, tmp_path,
                                                                    spool_path, task_id):
    path = tmp_path / "task_executor.py"
    path.write_text(EXECUTOR_SOURCE)
    args = repr((app_config, str(tmp_path), str(spool_path), task_id, SEED_EDIT.search, SEED_EDIT.replace))
    crashed = subprocess.run([sys.executable, "-c", CRASHING_EXECUTOR, args], capture_output=True, text=True,
                             timeout=60)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert path.read_text().count("def _record_step_result") == 1, "the edit was applied before the crash"
    assert [r[:3] for r in state(cluster, ledger_db, task_id)] == [(1, "pending", 0)], "and never recorded"

    lines = []
    ex = executor(app_config, tmp_path, spool_path, lines)
    summary = ex.run_task(task_id, [Step(1, "search_replace", "task_executor.py", SEED_EDIT.search,
                                         SEED_EDIT.replace)])
    ex.step_recorder.close()
    assert summary.ran == [1] and not summary.failed
    assert lines[-1].endswith("(already in place, file untouched)")
    assert path.read_text().count("def _record_step_result") == 1
    assert path.read_text().count("def _audit_file_operation") == 1
    assert [r[:3] for r in state(cluster, ledger_db, task_id)] == [(1, "success", 1)]


def test_database_down_the_task_finishes_at_full_speed_and_every_record_arrives_later(
        cluster, ledger_db, app_config, down_config, tmp_path, spool_path, task_id):
    steps = [Step(n, "bash", command="true") for n in range(1, 11)]
    started = time.monotonic()
    ex = executor(down_config, tmp_path, spool_path)
    assert ex.run_task(task_id, steps).ran == list(range(1, 11))
    with_ledger_down = time.monotonic() - started
    ex.step_recorder.close()

    started = time.monotonic()
    for step in steps:
        subprocess.run(["bash", "-c", step.command], cwd=tmp_path, check=True)
    bare = time.monotonic() - started
    # A loose bound on a noisy machine: one refused connection, then the breaker; the recorder adds
    # well under a second to ten steps, where waiting out timeouts would add many.
    assert with_ledger_down - bare < 1.0, (with_ledger_down, bare)

    online = StepRecorder(app_config, spool_path=spool_path)
    counts = online.replay()
    online.close()
    assert (counts["recorded"], counts["remaining"]) == (20, 0)
    assert [r[:3] for r in state(cluster, ledger_db, task_id)] == [(n, "success", 1) for n in range(1, 11)]
    assert len(history(cluster, ledger_db, task_id)) == 20


def test_nul_invalid_utf8_and_a_megabyte_of_stderr_from_a_bash_step(cluster, ledger_db, app_config, tmp_path,
                                                                    spool_path, task_id):
    command = (r"printf 'first\000line \377\376\n' >&2; head -c 1000000 /dev/zero | tr '\0' x >&2;"
               r" printf '\nlast' >&2; exit 3")
    ex = executor(app_config, tmp_path, spool_path)
    summary = ex.run_task(task_id, [Step(1, "bash", command=command)])
    ex.step_recorder.close()
    assert summary.failed == [1]
    [(_, result, attempts, _, error)] = state(cluster, ledger_db, task_id)
    assert (result, attempts) == ("failed", 1)
    assert error.startswith("exit 3: ") and error.endswith("x\nlast")
    assert "\x00" not in error and len(error) < 16384
    assert spool_path.exists() is False, "it reached the database"


def test_a_bash_step_runs_in_the_workdir_and_a_timeout_kills_it(app_config, tmp_path, spool_path, task_id):
    ex = executor(app_config, tmp_path, spool_path)
    ex.bash_timeout = 1
    assert ex.run_task(task_id, [Step(1, "bash", command="test \"$PWD\" = " + str(tmp_path))]).ran == [1]
    started = time.monotonic()
    summary = ex.run_task(task_id, [Step(2, "bash", command="sleep 30 & wait")])
    ex.step_recorder.close()
    assert time.monotonic() - started < 10
    assert summary.failed == [2] and summary.error.startswith("timed out after 1 s; killed.")


def test_an_unknown_step_type_fails_clearly(app_config, tmp_path, spool_path, task_id):
    ex = executor(app_config, tmp_path, spool_path)
    summary = ex.run_task(task_id, [Step(1, "python", command="print()")])
    ex.step_recorder.close()
    assert summary.failed == [1] and summary.error == "unknown step type 'python'"


@pytest.mark.parametrize("result", [None, {}, {"success": False}])
def test_a_result_without_success_counts_as_failed(cluster, ledger_db, app_config, task_id, spool_path, result):
    ex = executor(app_config, ".", spool_path)
    assert ex._record_step_result(task_id, 1, "bash", None, result, 5) is True
    ex.step_recorder.close()
    assert [r[:2] for r in state(cluster, ledger_db, task_id)] == [(1, "failed")]


def test_the_mixin_recorder_comes_from_the_libpq_variables_without_db_config(cluster, ledger_db, monkeypatch,
                                                                             spool_path, task_id):
    for name, value in cluster.env(ledger_db).items():
        if name.startswith("PG"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("JR_STEP_SPOOL", str(spool_path))
    ex = TaskExecutor(workdir=".", say=lambda line: None)
    assert not hasattr(ex, "db_config")
    assert ex.run_task(task_id, [Step(1, "bash", command="true")]).ran == [1]
    ex.step_recorder.close()
    assert [r[:2] for r in state(cluster, ledger_db, task_id)] == [(1, "success")]
    assert os.environ["JR_STEP_SPOOL"] == str(ex.step_recorder.spool.path)


def test_a_step_is_over_when_bash_exits_whatever_it_left_running(app_config, tmp_path, spool_path, task_id):
    ex = executor(app_config, tmp_path, spool_path)
    ex.bash_timeout = 20
    started = time.monotonic()
    summary = ex.run_task(task_id, [Step(1, "bash", command="sleep 30 & echo started")])
    assert summary.ran == [1] and not summary.failed, summary.error
    assert time.monotonic() - started < 10
    ex.bash_timeout = 1
    started = time.monotonic()
    summary = ex.run_task(task_id, [Step(2, "bash", command="setsid sleep 30 & sleep 60")])
    ex.step_recorder.close()
    assert summary.failed == [2] and summary.error.startswith("timed out after 1 s")
    assert time.monotonic() - started < 10, "a grandchild in its own session holding the output does not matter"


@pytest.mark.parametrize(("result", "error"), [
    (True, None), (False, "the step returned False"), ("ok", "the step returned 'ok', not a dict with 'success'"),
    ({"success": False, "error": ValueError("bad")}, "bad")])
def test_whatever_a_step_returns_is_recorded_and_nothing_raises(cluster, ledger_db, app_config, spool_path, task_id,
                                                                result, error):
    ex = executor(app_config, ".", spool_path)
    assert ex._record_step_result(task_id, 1, "bash", None, result, 5) is True
    ex.step_recorder.close()
    assert [(r[1], r[4]) for r in state(cluster, ledger_db, task_id)] == [("success" if error is None else "failed",
                                                                          error)]


def test_a_db_config_given_as_a_dsn_string_works(cluster, ledger_db, app_config, spool_path, task_id):
    ex = TaskExecutor(db_config=" ".join(f"{k}='{v}'" for k, v in app_config.items()), workdir=".",
                     say=lambda line: None)
    ex.step_recorder.spool.path = spool_path
    assert ex.run_task(task_id, [Step(1, "bash", command="true")]).ran == [1]
    ex.step_recorder.close()
    assert [r[:2] for r in state(cluster, ledger_db, task_id)] == [(1, "success")]
