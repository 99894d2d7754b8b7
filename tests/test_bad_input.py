"""Bad input to the Python side, table-driven: the recorder and the executor never let an exception
escape, and each case ends in one of three documented ways:
    stored    accepted, with the clean-up shown (NULs stripped, bad bytes replaced, long text cut)
    refused   the recorder refuses it before sending (not a 32-bit integer, an unknown result):
              False and one WARNING; nothing spooled
    rejected  the ledger refuses it for good (its SQLSTATE): False and one WARNING; the event is
              kept in spool.jsonl.rejected for a person, never retried
The SQL side has its own table in db/tests/04_bad_input.sql."""

import json
import logging
import os

import pytest
from conftest import state
from jr_step_rewards import StepRecorder, TaskExecutor
from jr_step_rewards.instructions import Step

INJECTION = "x'); DROP TABLE jr_step_rewards; --"
TEN_MB = "HEAD" + "e" * (10 * 1024 * 1024) + "TAIL"
CUT = "characters cut]…"


def cut_to(length):
    return lambda value: len(value) == length and CUT in value


def head_and_tail_within(length):
    return lambda value: len(value) <= length and value.startswith("HEAD") and value.endswith("TAIL") and CUT in value


def stored(**expected):
    return ("stored", expected)


def refused(message):
    return ("refused", message)


def rejected(message):
    return ("rejected", message)


# (case, record_step arguments after task_id, expected)
CASES = [
    ("NUL in step_type", dict(step_type="ba\x00sh"), stored(step_type="bash")),
    ("NUL in target_file", dict(target_file="a\x00.py"), stored(target_file="a.py")),
    ("NUL in error_detail", dict(error_detail="bo\x00om"), stored(error_detail="boom")),
    ("invalid UTF-8 bytes in error_detail", dict(error_detail=b"\xff\xfe ok"), stored(error_detail="\ufffd\ufffd ok")),
    ("invalid UTF-8 bytes as target_file", dict(target_file=b"caf\xe9.py"), stored(target_file="caf\ufffd.py")),
    ("an undecodable file name (surrogate escapes)", dict(target_file=os.fsdecode(b"caf\xe9.py")),
     stored(target_file="caf\ufffd.py")),
    ("a lone surrogate in error_detail", dict(error_detail="a\ud800b"), stored(error_detail="a?b")),
    ("10 MB of stderr as text", dict(error_detail=TEN_MB), stored(error_detail=head_and_tail_within(16384))),
    ("10 MB of stderr as bytes", dict(error_detail=TEN_MB.encode()), stored(error_detail=head_and_tail_within(16384))),
    ("a 500-character ASCII path", dict(target_file="p" * 500), stored(target_file="p" * 500)),
    ("a 501-character ASCII path", dict(target_file="p" * 501), stored(target_file=cut_to(500))),
    ("a 5000-character ASCII path", dict(target_file="p" * 5000), stored(target_file=cut_to(500))),
    ("a 500-character multibyte path", dict(target_file="日" * 500), stored(target_file="日" * 500)),
    ("a 501-character multibyte path", dict(target_file="日" * 501), stored(target_file=cut_to(500))),
    ("a 5000-character multibyte path", dict(target_file="é" * 5000), stored(target_file=cut_to(500))),
    ("an empty target_file", dict(target_file=""), stored(target_file="")),
    ("an empty error_detail", dict(error_detail=""), stored(error_detail="")),
    ("SQL injection in step_type", dict(step_type="'); DROP TABLE x; --"), stored(step_type="'); DROP TABLE x; --")),
    ("SQL injection in target_file", dict(target_file=INJECTION), stored(target_file=INJECTION)),
    ("SQL injection in error_detail", dict(error_detail=INJECTION), stored(error_detail=INJECTION)),
    ("the smallest task_id", dict(task_id=-(2**31)), stored()),
    ("the largest execution_time_ms", dict(execution_time_ms=2**31 - 1), stored()),
    ("a fractional execution_time_ms", dict(execution_time_ms=12.6), stored(execution_time_ms=13)),
    ("no execution_time_ms", dict(execution_time_ms=None), stored(execution_time_ms=None)),
    ("an empty step_type", dict(step_type=""), rejected("step_type must not be empty")),
    ("no step_type", dict(step_type=None), rejected("step_type must not be NULL")),
    ("a step_type one character too long", dict(step_type="s" * 31), rejected("is 31 characters, more than the 30")),
    ("a negative step_number", dict(step_number=-1), rejected("step_number must be 0 or more, got -1")),
    ("a negative execution_time_ms", dict(execution_time_ms=-1), rejected("execution_time_ms must be 0 or more")),
    ("no task_id", dict(task_id=None), refused("task_id must be a 32-bit integer, got None")),
    ("a task_id beyond 32 bits", dict(task_id=2**31), refused("task_id must be a 32-bit integer, got 2147483648")),
    ("a step_number beyond 32 bits", dict(step_number=-(2**31) - 1), refused("step_number must be a 32-bit integer")),
    ("a bool as task_id", dict(task_id=True), refused("task_id must be a 32-bit integer, got True")),
    ("a string as step_number", dict(step_number="3"), refused("step_number must be a 32-bit integer, got '3'")),
    ("NaN as execution_time_ms", dict(execution_time_ms=float("nan")), refused("cannot convert float NaN to integer")),
    ("an unknown result", dict(execution_result="done"), refused("execution_result must be one of pending, success")),
    ("no result", dict(execution_result=None), refused("execution_result must be one of pending, success, failed")),
    ("SQL injection as the result", dict(execution_result=INJECTION), refused("execution_result must be one of")),
]


@pytest.mark.parametrize(("case", "changes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_recorder_with_bad_input(cluster, ledger_db, app_config, spool_path, task_id, caplog, case, changes,
                                     expected):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    args = dict(task_id=task_id, step_number=1, step_type="bash", target_file=None, execution_result="failed",
                execution_time_ms=5, error_detail=None)
    args.update(changes)
    recorder = StepRecorder(app_config, spool_path=spool_path)
    answer = recorder.record_step(**args)  # never raises
    recorder.close()
    kind, detail = expected
    warnings = [r.getMessage() for r in caplog.records]
    rejected_file = spool_path.with_name(spool_path.name + ".rejected")
    assert not (spool_path.exists() and spool_path.stat().st_size), "nothing waits in the spool"
    if kind == "stored":
        assert answer is True and warnings == []
        [row] = cluster.admin("SELECT step_type, target_file, error_detail, execution_time_ms FROM jr_step_rewards"
                              " WHERE task_id = %s", (args["task_id"],), dbname=ledger_db)
        for column, value in detail.items():
            got = row[["step_type", "target_file", "error_detail", "execution_time_ms"].index(column)]
            assert value(got) if callable(value) else got == value, (column, got)
        return
    assert answer is False
    assert len(warnings) == 1 and detail in warnings[0], warnings
    assert cluster.admin("SELECT count(*) FROM jr_step_rewards WHERE task_id = %s", (task_id,),
                         dbname=ledger_db) == [(0,)]
    if kind == "rejected":
        [line] = rejected_file.read_text().splitlines()
        assert detail in json.loads(line)["rejected_because"]
    else:
        assert not rejected_file.exists()


def test_sql_injection_in_the_executor_identity_is_stored_verbatim(cluster, ledger_db, app_config, spool_path,
                                                                   task_id):
    recorder = StepRecorder(app_config, spool_path=spool_path, executor_id=INJECTION)
    assert recorder.record_step(task_id, 1, "bash", None, "success", 1) is True
    recorder.close()
    assert cluster.admin("SELECT executor FROM jr_step_attempts WHERE task_id = %s", (task_id,),
                         dbname=ledger_db) == [(INJECTION,)]


@pytest.mark.parametrize("reward", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_rewards_are_refused_without_raising(app_config, rewarder_config, spool_path, task_id, caplog,
                                                        reward):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    recorder = StepRecorder(app_config, spool_path=spool_path)
    assert recorder.record_step(task_id, 1, "bash", None, "success", 1) is True
    recorder.close()
    rewards = StepRecorder(rewarder_config, spool_path=spool_path)
    assert rewards.set_step_reward(task_id, 1, reward) is False
    assert rewards.record_exploration("jr", "task", novelty_score=reward) is None
    rewards.close()
    assert len([r.getMessage() for r in caplog.records if "finite number" in r.getMessage()]) == 2


def edit(path, search="x = 1\n", replace="x = 2\n"):
    return Step(1, "search_replace", path, search, replace)


# (case, prepare the work folder, the step, the error it ends with)
EXECUTOR_CASES = [
    ("a missing target file", lambda d: None, edit("missing.py"), "file not found: {d}/missing.py"),
    ("a directory as the target", lambda d: (d / "sub").mkdir(), edit("sub"), "not a regular file: {d}/sub"),
    ("a read-only file", lambda d: ((d / "ro.py").write_text("x = 1\n"), (d / "ro.py").chmod(0o444)), edit("ro.py"),
     "file is read-only: {d}/ro.py"),
    ("search text occurring twice", lambda d: (d / "two.py").write_text("x = 1\nx = 1\n"), edit("two.py"),
     "search text found 2 times, expected once: {d}/two.py"),
    ("NUL characters in the output", lambda d: None,
     Step(1, "bash", command=r"printf 'out\000put'; printf 'e\000rr' >&2; exit 4"), "exit 4: err"),
    ("invalid UTF-8 in the output", lambda d: None, Step(1, "bash", command=r"printf '\377\376 bad' >&2; exit 5"),
     "exit 5: \ufffd\ufffd bad"),
    ("10 MB of stderr", lambda d: None,
     Step(1, "bash", command="head -c 10485760 /dev/zero | tr '\\0' e >&2; printf TAIL >&2; exit 6"),
     lambda e: e.startswith("exit 6: …[10485764 bytes of stderr; the last 4000 characters follow]…") and
     e.endswith("eTAIL")),
]


@pytest.mark.parametrize(("case", "prepare", "step", "error"), EXECUTOR_CASES, ids=[c[0] for c in EXECUTOR_CASES])
def test_the_executor_with_bad_input(cluster, ledger_db, app_config, tmp_path, spool_path, task_id, case, prepare,
                                     step, error):
    prepare(tmp_path)
    ex = TaskExecutor(workdir=tmp_path, say=lambda line: None)
    ex.step_recorder = StepRecorder(app_config, spool_path=spool_path)
    summary = ex.run_task(task_id, [step, Step(2, "bash", command="true")])  # never raises
    ex.step_recorder.close()
    assert summary.failed == [1] and summary.ran == [1], "the step ran, failed cleanly, and the task stopped there"
    [(_, result, attempts, _, recorded)] = state(cluster, ledger_db, task_id)
    assert (result, attempts) == ("failed", 1)
    if callable(error):
        assert error(summary.error) and error(recorded), summary.error[:200]
    else:
        assert recorded == summary.error.replace("\x00", "") == error.format(d=tmp_path), "NULs stripped on the way"
