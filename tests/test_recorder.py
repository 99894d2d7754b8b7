"""StepRecorder against a real PostgreSQL: it records, never raises, never blocks past its deadline,
spools what the database cannot take, and replays it exactly once."""

import json
import logging
import os
import socket
import threading
import time

import psycopg2
import pytest
from conftest import APP_PASSWORD, history, state
from faults import FaultyProxy
from jr_step_rewards import StepRecorder, StepTrackingMixin, db
from jr_step_rewards.records import ERROR_DETAIL_MAX, StepEvent, clean_text, elide_middle
from jr_step_rewards.spool import Spool

SEED_HASH_VECTOR = ((7, 3, "search_replace", "/ganuda/jr_executor/task_executor.py"),
                    "6138d70c647a2198040ead4917a1516bd2ce8db778ee11abe10e92326d927eda")


@pytest.fixture
def recorder(app_config, spool_path):
    r = StepRecorder(app_config, spool_path=spool_path)
    yield r
    r.close()


def test_records_through_a_login_that_is_only_a_jr_executor(cluster, ledger_db, recorder, task_id):
    assert recorder.record_step(task_id, 1, "bash", None, "pending") is True
    assert recorder.record_step(task_id, 1, "bash", None, "failed", 12.6, "exit 2: boom") is True
    assert state(cluster, ledger_db, task_id) == [(1, "failed", 1, 13, "exit 2: boom")]
    assert recorder.step_succeeded(task_id, 1) is False
    assert recorder.record_step(task_id, 1, "bash", None, "success", 5) is True
    assert recorder.step_succeeded(task_id, 1) is True
    assert recorder.step_succeeded(task_id, 1, recorder.content_hash(task_id, 1, "bash", None)) is True
    assert recorder.step_succeeded(task_id, 1, recorder.content_hash(task_id, 1, "bash", "changed.py")) is False
    executor = cluster.admin("SELECT DISTINCT executor FROM jr_step_attempts WHERE task_id = %s", (task_id,),
                             dbname=ledger_db)
    assert executor == [(recorder.executor_id,)]


def test_the_content_hash_is_the_seeds():
    args, expected = SEED_HASH_VECTOR
    assert StepRecorder.content_hash(*args) == expected


def test_python_cuts_long_errors_exactly_as_the_ledger_does(cluster, ledger_db):
    for text in ["x" * (ERROR_DETAIL_MAX + 1), "é" * 20000 + "tail", "a" * 10**6, "short"]:
        assert cluster.admin("SELECT jr_elide_middle(%s, %s)", (text, ERROR_DETAIL_MAX), dbname=ledger_db) \
            == [(elide_middle(text, ERROR_DETAIL_MAX),)]


def test_text_is_cleaned_before_it_is_sent(cluster, ledger_db, recorder, task_id):
    nasty = b"before\x00after \xff\xfe invalid " + "é".encode() + b" \xed\xa0\x80"
    assert recorder.record_step(task_id, 1, "bash", "dir\x00/f\udcffile.py", "failed", 1, nasty) is True
    [(target, error)] = cluster.admin("SELECT target_file, error_detail FROM jr_step_rewards WHERE task_id = %s",
                                      (task_id,), dbname=ledger_db)
    assert target == "dir/f\ufffdile.py"
    assert error == "beforeafter \ufffd\ufffd invalid é \ufffd\ufffd\ufffd"
    assert clean_text("\ud800 lone") == "? lone"


def test_a_megabyte_of_stderr_is_kept_head_and_tail(cluster, ledger_db, recorder, task_id):
    stderr = "FIRST LINE\n" + "noise\n" * 200_000 + "LAST LINE"
    assert recorder.record_step(task_id, 1, "bash", None, "failed", 1, stderr) is True
    [(error,)] = cluster.admin("SELECT error_detail FROM jr_step_rewards WHERE task_id = %s", (task_id,),
                               dbname=ledger_db)
    assert len(error) <= ERROR_DETAIL_MAX
    assert error.startswith("FIRST LINE") and error.endswith("LAST LINE") and "characters cut]…" in error


def test_bad_input_never_raises_and_is_logged_once(recorder, task_id, caplog, spool_path):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    assert recorder.record_step(task_id, 2**31, "bash", None, "success", 1) is False
    assert recorder.record_step(task_id, 1, "bash", None, "done", 1) is False
    assert recorder.record_step(task_id, 1, "x" * 31, None, "success", 1) is False
    assert recorder.step_succeeded(None, 1) is False
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4, messages
    assert "step_number must be a 32-bit integer, got 2147483648" in messages[0]
    assert "execution_result must be one of pending, success, failed, got 'done'" in messages[1]
    assert "is 31 characters, more than the 30 allowed" in messages[2]
    assert "step_succeeded(None, 1) refused: record_step" not in messages[3]
    assert "task_id must not be NULL" in messages[3]
    # The event the ledger refused for good is kept for a person, not spooled for ever.
    rejected = spool_path.with_name("spool.jsonl.rejected").read_text().splitlines()
    assert len(rejected) == 1 and json.loads(rejected[0])["step_type"] == "x" * 31
    assert not spool_path.exists()


def test_database_down_the_task_goes_on_and_replay_delivers_every_record_once(
        cluster, ledger_db, app_config, down_config, spool_path, task_id, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    offline = StepRecorder(down_config, spool_path=spool_path)
    started = time.monotonic()
    for step in range(1, 21):
        assert offline.record_step(task_id, step, "bash", None, "pending") is False
        assert offline.record_step(task_id, step, "bash", None, "success" if step != 20 else "failed", 3) is False
    assert offline.step_succeeded(task_id, 5) is True, "a spooled success counts"
    assert offline.step_succeeded(task_id, 20) is False
    assert offline.step_succeeded(task_id, 21) is False
    elapsed = time.monotonic() - started
    offline.close()
    assert elapsed < offline.deadline, f"40 records and 3 checks with the database down took {elapsed:.2f} s"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "Connection refused" in warnings[0], "one warning, then the breaker"
    assert len(spool_path.read_text().splitlines()) == 40

    online = StepRecorder(app_config, spool_path=spool_path)
    counts = online.replay()
    assert {k: counts[k] for k in ("recorded", "duplicate", "remaining", "error")} == \
        {"recorded": 40, "duplicate": 0, "remaining": 0, "error": None}
    assert online.spool.is_empty()
    assert online.replay()["recorded"] == 0, "nothing is sent twice"
    online.close()
    rows = state(cluster, ledger_db, task_id)
    assert [(n, r, a) for n, r, a, _, _ in rows] == [(n, "success", 1) for n in range(1, 20)] + [(20, "failed", 1)]
    assert len(history(cluster, ledger_db, task_id)) == 40


def test_the_next_good_connection_replays_the_spool_by_itself(cluster, ledger_db, app_config, down_config,
                                                              spool_path, task_id):
    offline = StepRecorder(down_config, spool_path=spool_path)
    offline.record_step(task_id, 1, "bash", None, "success", 1)
    offline.close()
    online = StepRecorder(app_config, spool_path=spool_path)
    assert online.record_step(task_id, 2, "bash", None, "success", 1) is True
    assert online.step_succeeded(task_id, 1) is True
    online.close()
    assert spool_path.parent.exists() and online.spool.is_empty()
    assert [r[:3] for r in state(cluster, ledger_db, task_id)] == [(1, "success", 1), (2, "success", 1)]


def test_a_replayed_older_event_never_overwrites_newer_state(cluster, ledger_db, recorder, spool_path, task_id):
    old = StepEvent.create(task_id, 1, "bash", None, "failed", 9, "old failure")  # timed first
    assert recorder.record_step(task_id, 1, "bash", None, "success", 4) is True  # newer, straight to the database
    recorder.spool.append(old)  # delivered late
    counts = recorder.replay()
    assert counts["stale"] == 1 and counts["remaining"] == 0
    assert state(cluster, ledger_db, task_id) == [(1, "success", 2, 4, None)]


def test_replaying_the_same_spool_twice_records_each_event_once(cluster, ledger_db, recorder, spool_path, task_id):
    events = [StepEvent.create(task_id, n, "bash", None, "success", n) for n in (1, 2)]
    for event in events:
        recorder.spool.append(event)
    copy = spool_path.read_bytes()
    assert recorder.replay()["recorded"] == 2
    spool_path.write_bytes(copy)
    assert recorder.replay()["duplicate"] == 2
    assert len(history(cluster, ledger_db, task_id)) == 2


def test_a_torn_last_line_is_skipped_with_a_warning_and_the_rest_replays(cluster, ledger_db, recorder, spool_path,
                                                                         task_id, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    recorder.spool.append(StepEvent.create(task_id, 1, "bash", None, "success", 1))
    with open(spool_path, "ab") as f:  # a crash in the middle of the next append
        f.write(json.dumps(StepEvent.create(task_id, 2, "bash", None, "success", 1).as_dict()).encode()[:40])
    recorder.spool.append(StepEvent.create(task_id, 3, "bash", None, "success", 1))  # ends the torn line first

    counts = recorder.replay()
    assert counts["recorded"] == 2 and counts["remaining"] == 0
    assert any("skipping unreadable line 2" in r.getMessage() for r in caplog.records)
    assert [r[0] for r in state(cluster, ledger_db, task_id)] == [1, 3]


def test_a_peer_that_never_answers_cannot_hold_the_caller_past_the_deadline(app_config, spool_path, task_id):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (the kernel does) and never says a word
    try:
        recorder = StepRecorder(dict(app_config, port=silent.getsockname()[1]), spool_path=spool_path,
                                deadline=0.5, cooldown=60)
        started = time.monotonic()
        assert recorder.record_step(task_id, 1, "bash", None, "success", 1) is False
        first = time.monotonic() - started
        assert recorder.record_step(task_id, 2, "bash", None, "success", 1) is False
        assert recorder.step_succeeded(task_id, 3) is False
        total = time.monotonic() - started
        recorder.close()
    finally:
        silent.close()
    assert first < 1.5, f"the first call waited {first:.2f} s with a 0.5 s deadline"
    assert total < 2.0, f"later calls skipped the stuck database (took {total:.2f} s in all)"
    assert len(spool_path.read_text().splitlines()) == 2


def test_warnings_never_show_the_password(app_config, spool_path, task_id, caplog):
    caplog.set_level(logging.DEBUG, "jr_step_rewards")
    wrong = StepRecorder(dict(app_config, user="nobody_here"), spool_path=spool_path)
    wrong.record_step(task_id, 1, "bash", None, "success", 1)
    wrong.close()
    malformed = StepRecorder(dsn=f"host=127.0.0.1 password={APP_PASSWORD}", spool_path=spool_path)
    malformed.record_step(task_id, 1, "bash", None, "success", 1)
    malformed.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "password authentication failed" in text or "nobody_here" in text
    assert "the DSN is malformed (libpq's message is withheld" in text
    for secret in (APP_PASSWORD, *APP_PASSWORD.split()):
        assert secret not in text


class BareExecutor(StepTrackingMixin):
    """The least an executor can be: a class with a db_config."""

    def __init__(self, db_config):
        self.db_config = db_config


def test_the_mixin_works_on_a_bare_class_with_only_db_config(cluster, ledger_db, app_config, task_id):
    bare = BareExecutor(app_config)
    assert bare._step_already_succeeded(task_id, 1) is False
    assert bare._record_step_result(task_id, 1, "search_replace", "a.py", {"success": False, "error": "nope"}, 7)
    assert bare._record_step_result(task_id, 1, "search_replace", "a.py", {"success": True}, 8)
    assert bare._step_already_succeeded(task_id, 1) is True
    bare._current_task_id, bare._current_step_number = task_id, 2
    with bare.tracked_step("bash") as step:
        step.result = {"success": False, "error": "exit 1: two lines"}
    with pytest.raises(ZeroDivisionError):
        with bare.tracked_step("bash", step_number=3):
            raise ZeroDivisionError("division by zero")
    bare.step_recorder.close()
    assert [r[:3] + (r[4],) for r in state(cluster, ledger_db, task_id)] == [
        (1, "success", 2, None), (2, "failed", 1, "exit 1: two lines"),
        (3, "failed", 1, "ZeroDivisionError: division by zero")]
    assert history(cluster, ledger_db, task_id) == [
        (1, 1, "failed"), (1, 2, "success"), (2, 1, "pending"), (2, 1, "failed"), (3, 1, "pending"), (3, 1, "failed")]


def test_the_thin_caller_joins_the_callers_transaction(cluster, ledger_db, task_id):
    conn = cluster.connect(ledger_db)
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    assert db.record_step(conn, task_id, 1, "bash", None, "success", 1) == "recorded"
    assert db.step_succeeded(conn, task_id, 1) is True
    conn.rollback()
    assert db.step_succeeded(conn, task_id, 1) is False
    conn.close()


def test_the_spool_has_a_sane_configurable_home(tmp_path, monkeypatch):
    monkeypatch.delenv("JR_STEP_SPOOL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert StepRecorder().spool.path == tmp_path / "state" / "jr-step-rewards" / "spool.jsonl"
    monkeypatch.setenv("JR_STEP_SPOOL", str(tmp_path / "elsewhere.jsonl"))
    assert StepRecorder().spool.path == tmp_path / "elsewhere.jsonl"
    assert StepRecorder(spool_path=tmp_path / "x.jsonl").spool.path == tmp_path / "x.jsonl"


def test_concurrent_appends_from_threads_lose_nothing(tmp_path, task_id):
    recorder = StepRecorder(spool_path=tmp_path / "s.jsonl")

    def write(n):
        for i in range(50):
            recorder.spool.append(StepEvent.create(task_id, n * 100 + i, "bash", None, "success", 1))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(recorder.spool.events()) == 200


def test_every_statement_carries_its_timeouts_and_the_session_holds_none(app_config, spool_path):
    recorder = StepRecorder(app_config, spool_path=spool_path, connect_timeout=3, statement_timeout_ms=1234,
                            lock_timeout_ms=321, tcp_user_timeout_ms=4567)
    conn = recorder._connect()
    timeouts = "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
    try:
        with conn.cursor() as cur:  # the recorder's own cursor: its SET LOCALs ride with the statement
            cur.execute(timeouts)
            assert cur.fetchone() == ("1234ms", "321ms")
        with conn.cursor(cursor_factory=psycopg2.extensions.cursor) as cur:  # the session underneath
            cur.execute(timeouts)
            assert cur.fetchone() == ("0", "0"), "nothing is set on the session, so nothing can leak past a pooler"
        params = conn.get_dsn_parameters()
        assert {k: params.get(k) for k in ("connect_timeout", "keepalives", "tcp_user_timeout")} == \
            {"connect_timeout": "3", "keepalives": "1", "tcp_user_timeout": "4567"}
        assert not params.get("options"), "no startup options: PgBouncer refuses them"
        assert conn.autocommit is True
    finally:
        conn.close()


def test_the_breaker_skips_the_database_for_its_cooldown_then_tries_again(cluster, ledger_db, app_config,
                                                                          spool_path, task_id, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    proxy = FaultyProxy("127.0.0.1", cluster.port)
    proxy.set_mode("drop")
    recorder = StepRecorder(dict(app_config, port=proxy.port), spool_path=spool_path, cooldown=0.5)
    try:
        assert recorder.record_step(task_id, 1, "bash", None, "success", 1) is False
        proxy.set_mode("forward")
        assert recorder.record_step(task_id, 2, "bash", None, "success", 1) is False, "open: not even tried"
        assert len(caplog.records) == 1
        time.sleep(0.6)
        started = time.monotonic()
        assert recorder.record_step(task_id, 3, "bash", None, "success", 1) is False, "spooled; probed behind it"
        assert time.monotonic() - started < 0.2, "the caller does not wait for the probe"
        wait_until(lambda: not recorder.breaker_open)
        assert recorder.record_step(task_id, 4, "bash", None, "success", 1) is True, "closed again: direct"
    finally:
        recorder.close()
        proxy.close()
    assert [r[:3] for r in state(cluster, ledger_db, task_id)] == [(n, "success", 1) for n in (1, 2, 3, 4)], \
        "the spooled records were replayed on the first good connection"
    assert recorder.spool.is_empty()


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def write_backlog(spool_path, task_id, n):
    """n spooled events of task_id, written in one go (as a long outage would leave them)."""
    spool_path.parent.mkdir(parents=True, exist_ok=True)
    with open(spool_path, "w") as f:
        for step in range(n):
            f.write(json.dumps(StepEvent.create(task_id, step, "bash", None, "success", 1).as_dict()) + "\n")


def test_a_long_spool_never_makes_the_callers_calls_late_and_loses_nothing(cluster, ledger_db, app_config,
                                                                            spool_path, task_id):
    backlog = 60_000
    write_backlog(spool_path, task_id, backlog)
    recorder = StepRecorder(app_config, spool_path=spool_path, deadline=0.5)
    try:
        for call in range(6):
            started = time.monotonic()
            assert recorder.record_step(task_id, backlog + call, "bash", None, "success", 1) is True, \
                f"call {call}: in time, not spooled"
            assert time.monotonic() - started < 1.5, f"call {call} was late"
        started = time.monotonic()
        assert recorder.step_succeeded(task_id, backlog - 1) is True, "a spooled success counts"
        assert time.monotonic() - started < 1.0, "asking a long spool stays cheap"
    finally:
        recorder.close()
    [(rows,)] = cluster.admin("SELECT count(*) FROM jr_step_rewards WHERE task_id = %s", (task_id,), dbname=ledger_db)
    waiting = recorder.spool.count()
    assert rows > 6, "the backlog is replayed a slice at a time"
    assert rows + waiting == backlog + 6, "every event is in the ledger or still in the spool"


def test_a_closed_recorder_can_be_used_again(cluster, ledger_db, app_config, spool_path, task_id):
    recorder = StepRecorder(app_config, spool_path=spool_path)
    assert recorder.record_step(task_id, 1, "bash", None, "success", 1) is True
    recorder.close()
    started = time.monotonic()
    assert recorder.record_step(task_id, 2, "bash", None, "success", 1) is True
    assert time.monotonic() - started < 1.0
    recorder.close()
    assert [r[0] for r in state(cluster, ledger_db, task_id)] == [1, 2]


def test_a_spool_path_with_glob_characters_loses_nothing(cluster, ledger_db, app_config, tmp_path, task_id):
    path = tmp_path / "spool[1]*?" / "spool[1].jsonl"
    Spool(path).append(StepEvent.create(task_id, 1, "bash", None, "success", 1))
    recorder = StepRecorder(app_config, spool_path=path)
    counts = recorder.replay()
    recorder.close()
    assert (counts["recorded"], counts["remaining"]) == (1, 0)
    assert recorder.spool.is_empty() and not list(path.parent.glob("*.replay-*"))


def test_lines_that_are_not_events_are_skipped_with_a_warning(cluster, ledger_db, recorder, spool_path, task_id,
                                                              caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    good = StepEvent.create(task_id, 1, "bash", None, "success", 1).as_dict()
    spool_path.parent.mkdir(parents=True)
    spool_path.write_text("\n".join([
        "null", "[1, 2]", json.dumps(dict(good, recorded_at="yesterday")), json.dumps(dict(good, recorded_at=None)),
        json.dumps(dict(good, recorded_at="2026-01-01T00:00:00")), json.dumps(good)]) + "\n")
    assert recorder.step_succeeded(task_id, 1) is True  # the first call replays the spool before it asks
    assert recorder.replay()["remaining"] == 0
    assert [r[:2] for r in state(cluster, ledger_db, task_id)] == [(1, "success")]
    skipped = [r.getMessage() for r in caplog.records if "skipping unreadable line" in r.getMessage()]
    assert [m.split("line ")[1].split(" ")[0] for m in skipped] == ["1", "2", "3", "4", "5"]
    assert "recorded_at must be an ISO 8601 time with a time zone, got 'yesterday'" in skipped[2]


def test_a_forked_child_records_on_its_own_connection_and_leaves_the_parents_alone(
        cluster, ledger_db, app_config, spool_path, task_id):
    recorder = StepRecorder(app_config, spool_path=spool_path)
    assert recorder.record_step(task_id, 1, "bash", None, "success", 1) is True
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if its own record reached the ledger
        ok = recorder.record_step(task_id, 2, "bash", None, "success", 1)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert recorder.record_step(task_id, 3, "bash", None, "success", 1) is True, "the parent's session lives on"
    recorder.close()
    assert [r[0] for r in state(cluster, ledger_db, task_id)] == [1, 2, 3]


@pytest.fixture
def rewards(rewarder_config, spool_path):
    """The reward work's recorder, with a login of its own (jr_rewarder)."""
    r = StepRecorder(rewarder_config, spool_path=spool_path)
    yield r
    r.close()


def test_rewards_and_exploration_through_the_thin_caller_and_the_recorder(cluster, ledger_db, recorder, rewards,
                                                                          task_id, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    assert recorder.record_step(task_id, 1, "bash", None, "success", 3) is True
    assert rewards.set_step_reward(task_id, 1, 0.5, "correct") is True
    assert rewards.set_step_reward(task_id, 1, None, None, "skip") is True
    assert cluster.admin("SELECT implicit_reward, verified_outcome, retry_decision FROM jr_step_rewards"
                         " WHERE task_id = %s", (task_id,), dbname=ledger_db) == [(0.5, "correct", "skip")]
    new_id = rewards.record_exploration("se-jr", f"task-{task_id}", 0.9, 0.1, "success")
    assert isinstance(new_id, int)
    assert cluster.admin("SELECT jr_type, task_type, task_outcome FROM jr_exploration_log WHERE id = %s", (new_id,),
                         dbname=ledger_db) == [("se-jr", f"task-{task_id}", "success")]
    assert caplog.records == []

    # Refusals come back as False or None with one warning each, and do not trip the breaker.
    assert rewards.set_step_reward(task_id, 99, 1.0) is False
    assert rewards.set_step_reward(task_id, 1, float("nan")) is False
    assert rewards.record_exploration("se-jr", "x", task_outcome="done") is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages
    assert "step 99 is not in the ledger" in messages[0]
    assert "implicit_reward must be a finite number, got NaN" in messages[1]
    assert "task_outcome must be success, failed, partial or abandoned, got 'done'" in messages[2]
    assert rewards.set_step_reward(task_id, 1, 0.25) is True, "the breaker stayed closed"
    assert recorder.record_step(task_id, 2, "bash", None, "success", 3) is True

    conn = cluster.connect(ledger_db)
    try:
        db.set_step_reward(conn, task_id, 2, -1.0, retry_decision="retry")
        assert db.record_exploration(conn, "se-jr", "y") > new_id
        conn.rollback()
    finally:
        conn.close()


def test_rewards_and_exploration_fail_open_when_the_database_is_down(down_config, spool_path, task_id, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    recorder = StepRecorder(down_config, spool_path=spool_path)
    started = time.monotonic()
    assert recorder.set_step_reward(task_id, 1, 1.0) is False
    assert recorder.record_exploration("se-jr", "x") is None
    assert time.monotonic() - started < recorder.deadline
    recorder.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("set_step_reward(task" in m and "was not written" in m for m in messages)
    assert any("record_exploration('se-jr', 'x') was not written" in m for m in messages)
    assert not spool_path.exists(), "rewards and exploration are not spooled"


def test_a_spool_that_cannot_be_written_is_the_one_loss_and_it_is_named(down_config, tmp_path, task_id, caplog):
    caplog.set_level(logging.WARNING, "jr_step_rewards")
    (tmp_path / "a_file").write_text("")
    recorder = StepRecorder(down_config, spool_path=tmp_path / "a_file" / "spool.jsonl")  # its folder is a file
    assert recorder.record_step(task_id, 4, "bash", None, "failed", 1) is False
    recorder.close()
    lost = [r.getMessage() for r in caplog.records if "this record is lost" in r.getMessage()]
    assert len(lost) == 1 and f"task {task_id} step 4 failed, event " in lost[0]
