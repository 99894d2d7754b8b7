"""The spool on its own, without a database: several processes appending while another replays
lose nothing and send nothing twice."""

import json
import multiprocessing
import os
import stat
import threading
import time

import pytest
from jr_step_rewards.records import StepEvent
from jr_step_rewards.spool import Spool

WRITERS, EACH = 4, 300


def append_many(path, writer):
    spool = Spool(path)
    for step in range(EACH):
        spool.append(StepEvent.create(writer, step, "bash", None, "success", 1))


def test_appends_racing_replays_lose_nothing_and_send_nothing_twice(tmp_path):
    path = tmp_path / "spool.jsonl"
    sent = []

    def send(event):
        sent.append((event.task_id, event.step_number))
        return "recorded"

    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=append_many, args=(path, w)) for w in range(WRITERS)]
    for w in writers:
        w.start()
    spool = Spool(path)
    replays = 0
    while any(w.is_alive() for w in writers):
        spool.replay(send)
        replays += 1
        time.sleep(0.001)
    for w in writers:
        w.join()
        assert w.exitcode == 0
    spool.replay(send)

    assert replays > 10, "the replays really raced the writers"
    assert len(sent) == len(set(sent)), "nothing was sent twice"
    assert set(sent) == {(w, step) for w in range(WRITERS) for step in range(EACH)}, "nothing was lost"
    assert spool.is_empty()


def test_appends_and_the_replays_claim_take_turns_on_one_lock(tmp_path):
    """The protocol behind the race above, shown deterministically: while the writers' lock is held,
    neither an append nor a replay's claim of the live file can proceed."""
    path = tmp_path / "spool.jsonl"
    spool = Spool(path)
    spool.append(StepEvent.create(1, 1, "bash", None, "success", 1))
    sent = []
    with spool._locked():
        appending = threading.Thread(target=spool.append, args=(StepEvent.create(1, 2, "bash", None, "success", 1),))
        replaying = threading.Thread(target=spool.replay, args=(lambda e: sent.append(e) or "recorded",))
        appending.start()
        replaying.start()
        time.sleep(0.3)
        assert appending.is_alive() and replaying.is_alive(), "both wait for the lock"
        assert path.exists() and len(path.read_text().splitlines()) == 1 and not sent
    appending.join(5)
    replaying.join(5)
    spool.replay(lambda e: sent.append(e) or "recorded")
    assert sorted(e.step_number for e in sent) == [1, 2]


def test_rejected_events_go_back_into_the_spool_and_a_torn_line_stays(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    events = [StepEvent.create(1, n, "bash", None, "success", 1) for n in (1, 2)]
    for event in events:
        spool.reject(event, "step_type is 31 characters")
    rejected = tmp_path / "spool.jsonl.rejected"
    with open(rejected, "ab") as f:
        f.write(b'{"task_id": 1, "step_nu')  # a crash in the middle of a third rejection

    assert spool.requeue_rejected() == (2, 1)
    assert [e.event_id for e in spool.events()] == [e.event_id for e in events], "the same events, in order"
    assert "rejected_because" not in spool.path.read_text(), "sent back as they were first sent"
    assert rejected.read_bytes() == b'{"task_id": 1, "step_nu\n', "the torn line is kept for a person, not lost"

    assert spool.requeue_rejected() == (0, 1), "moved once, not twice"
    rejected.write_text(json.dumps(dict(events[0].as_dict(), rejected_because="x")) + "\n")
    assert spool.requeue_rejected() == (1, 0)
    assert not rejected.exists(), "nothing left to keep: the file is gone"
    assert spool.requeue_rejected() == (0, 0)
    assert len(spool.events()) == 3


def test_moving_rejected_events_back_takes_the_writers_lock(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.reject(StepEvent.create(1, 1, "bash", None, "success", 1), "refused")
    with spool._locked():
        moving = threading.Thread(target=spool.requeue_rejected)
        moving.start()
        time.sleep(0.3)
        assert moving.is_alive(), "it waits for the lock"
        assert not spool.path.exists() and spool.path.with_name("spool.jsonl.rejected").exists()
    moving.join(5)
    assert len(spool.events()) == 1


def modes(root):
    """{path relative to root's parent: permission bits} of root and everything under it."""
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277], ids=["umask 000", "umask 022", "umask 277"])
def test_every_file_the_spool_makes_is_0600_and_every_folder_0700_whatever_the_umask(tmp_path, umask):
    """The events and the rejection reasons hold error texts and paths: only their owner reads them.
    Under umask 000 open() and mkdir() would make them 0666 and 0777; under 277, 0400 and 0500."""
    tmp_path.chmod(0o755)
    spool = Spool(tmp_path / "state" / "jr-step-rewards" / "spool.jsonl")  # two folders to make
    events = [StepEvent.create(1, n, "bash", None, "success", 1) for n in (1, 2, 3, 4)]
    sent = []

    def send(event):
        if sent:
            raise RuntimeError("the database went away")
        sent.append(event)
        return "recorded"

    previous = os.umask(umask)
    try:
        for event in events[:3]:
            spool.append(event)
        spool.reject(events[0], "refused")
        rejected = spool.path.with_name("spool.jsonl.rejected")
        assert stat.S_IMODE(rejected.stat().st_mode) == 0o600, "the rejected file as reject() makes it"
        with open(rejected, "ab") as f:
            f.write(b'{"torn')  # kept by requeue_rejected, which then rewrites the file through a .tmp
        assert spool.requeue_rejected() == (1, 1)
        assert spool.replay(send)["error"] is not None, "stops on the second event: a batch and its .sent"
        spool.append(events[3])
    finally:
        os.umask(previous)

    found = modes(tmp_path / "state")
    batch = next(name for name in found if name.endswith(".sent"))[:-len(".sent")]
    assert found == {
        "state": 0o700, "state/jr-step-rewards": 0o700,
        "state/jr-step-rewards/spool.jsonl": 0o600, "state/jr-step-rewards/spool.jsonl.lock": 0o600,
        "state/jr-step-rewards/spool.jsonl.replay.lock": 0o600, "state/jr-step-rewards/spool.jsonl.rejected": 0o600,
        batch: 0o600, batch + ".sent": 0o600}
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755, "a folder that was there is left as it was"


def test_a_rejected_file_left_readable_by_an_older_version_is_narrowed_to_0600(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    rejected = tmp_path / "spool.jsonl.rejected"
    rejected.write_text("")
    rejected.chmod(0o644)
    spool.reject(StepEvent.create(1, 1, "bash", None, "success", 1), "refused")
    assert stat.S_IMODE(rejected.stat().st_mode) == 0o600
