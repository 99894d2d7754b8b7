"""The durable spool: step events that could not reach the database wait here, one JSON object per
line, flushed and fsynced before the executor moves on.

Files, all beside the spool path:
    spool.jsonl              appended to by every recorder (under spool.jsonl.lock, held for one write)
    spool.jsonl.replay-*     batches claimed by a replay: renamed away under the same lock, so no
                             writer can still be appending to them
    spool.jsonl.replay-*.sent  how far into its batch a replay got (a byte offset), when it stopped
                             early; the next replay goes on from there
    spool.jsonl.rejected     events the ledger refused for good (bad input), kept for a person to read;
                             requeue_rejected (jr-steps replay --rejected) moves them back once fixed

Every file the spool creates is 0600 and every folder it creates 0700, whatever the umask: the
events and the rejection reasons hold error texts and paths. A file of the spool's that it writes
and finds wider (one made by an older version) is narrowed to 0600; folders that exist are left as
they are.

A crash can leave a torn last line. The next append first ends it with a newline, so it can never
swallow the record after it, and replay skips it with a warning. A crash during replay only means
that some events are sent again, which the ledger counts as duplicates.
"""

import fcntl
import glob
import json
import logging
import os
import stat
import time
from contextlib import contextmanager
from pathlib import Path

from .records import InvalidEvent, StepEvent

log = logging.getLogger("jr_step_rewards")

PRIVATE_FILE, PRIVATE_FOLDER = 0o600, 0o700


def _open_private(path, flags):
    """os.open with O_CREAT, the file 0600 whatever the umask: the umask masks the mode given to open,
    so fchmod sets it, and narrows a file of ours that an older version left wider."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    try:
        found = os.fstat(fd)
        if stat.S_IMODE(found.st_mode) != PRIVATE_FILE and found.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_private_folders(folder):
    """Create folder and its missing parents, each 0700 whatever the umask (mkdir's mode is masked by
    it, and Path.mkdir(parents=True) gives parents the default mode). Folders that exist are left as
    they are: a home or /tmp is not the spool's to change."""
    missing = []
    folder = Path(folder)
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        try:
            os.mkdir(new, PRIVATE_FOLDER)
        except FileExistsError:
            continue  # another process made it first, with this same code
        os.chmod(new, PRIVATE_FOLDER)


def default_spool_path():
    """$JR_STEP_SPOOL, else $XDG_STATE_HOME/jr-step-rewards/spool.jsonl (~/.local/state by default)."""
    if os.environ.get("JR_STEP_SPOOL"):
        return Path(os.environ["JR_STEP_SPOOL"])
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "jr-step-rewards" / "spool.jsonl"


def _line(event):
    return json.dumps(event.as_dict(), ensure_ascii=False).encode() + b"\n"


def _parse(raw):
    """The StepEvent on one spool line; ValueError (or TypeError) when the line is not one."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"not an event: {raw[:60]!r}")
    return StepEvent.from_dict(data)


class Spool:
    def __init__(self, path=None):
        self.path = Path(path) if path else default_spool_path()

    def _sibling(self, suffix):
        return self.path.with_name(self.path.name + suffix)

    @contextmanager
    def _locked(self, suffix=".lock", blocking=True):
        """An exclusive flock on a sibling lock file; yields False when not blocking and it is taken."""
        _make_private_folders(self.path.parent)
        fd = _open_private(self._sibling(suffix), os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def append(self, event):
        """Write one event durably: on disk (fsync) before this returns."""
        with self._locked():
            self._write(_line(event))

    def _write(self, lines):
        """Append whole lines to the live spool and fsync; the caller holds the writers' lock."""
        fd = _open_private(self.path, os.O_RDWR | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                lines = b"\n" + lines  # end a line torn by a crash before adding ours
            os.write(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)

    def requeue_rejected(self):
        """Move the rejected events back into the spool, for a person who has fixed what the ledger
        refused: under the writers' lock, each goes back as it was sent (without its
        rejected_because) and the rejected file is removed. Lines that are not events (torn by a
        crash) stay in the rejected file. Returns (events moved, lines kept)."""
        rejected = self._sibling(".rejected")
        with self._locked():
            try:
                lines = rejected.read_bytes().splitlines()
            except FileNotFoundError:
                return 0, 0
            events, kept = [], []
            for raw in filter(bytes.strip, lines):
                try:
                    events.append(_parse(raw))
                except (ValueError, TypeError):
                    kept.append(raw + b"\n")
            if events:
                self._write(b"".join(_line(event) for event in events))
            # Only now, with the events safe in the spool, is the rejected file rewritten: a crash
            # in between sends some of them twice, which the ledger counts as duplicates.
            if kept:
                tmp = self._sibling(".rejected.tmp")
                with os.fdopen(_open_private(tmp, os.O_WRONLY | os.O_TRUNC), "wb") as f:
                    f.write(b"".join(kept))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, rejected)
            else:
                rejected.unlink()
        return len(events), len(kept)

    # -- reading --------------------------------------------------------------------------------

    def _batches(self):
        pattern = glob.escape(str(self.path)) + ".replay-*"
        return sorted(Path(p) for p in glob.glob(pattern) if not p.endswith((".sent", ".tmp")))

    def _sent(self, batch):
        """The byte offset up to which a batch was already sent (0 when none)."""
        try:
            return int(Path(str(batch) + ".sent").read_text() or 0)
        except FileNotFoundError:
            return 0

    def _unsent(self):
        """(file, offset where its unsent part starts) for every spool file, oldest first."""
        return [*((batch, self._sent(batch)) for batch in self._batches()), (self.path, 0)]

    def _lines(self, path, offset):
        """The raw lines of a file from a byte offset; nothing when the file is gone."""
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                yield from f
        except FileNotFoundError:
            return

    def is_empty(self):
        return not any(os.path.exists(p) and os.path.getsize(p) > offset for p, offset in self._unsent())

    def count(self):
        """How many events wait (lines, counted without parsing them)."""
        return sum(1 for path, offset in self._unsent() for raw in self._lines(path, offset) if raw.strip())

    def events(self):
        """Every event still waiting, oldest file first. Unreadable lines are skipped silently:
        a writer may be in the middle of one; replay is the one that warns."""
        found = []
        for path, offset in self._unsent():
            for raw in self._lines(path, offset):
                try:
                    found.append(_parse(raw))
                except (ValueError, TypeError):
                    continue
        return found

    def _events_starting(self, **leading):
        """The waiting events whose line begins with these fields (task_id, then step_number, as
        every line does). Other lines are passed over without parsing, so a long spool stays cheap
        to ask; unreadable ones are skipped."""
        prefix = json.dumps(leading)[:-1].encode() + b","
        for path, offset in self._unsent():
            for raw in self._lines(path, offset):
                if raw.lstrip(b"\n").startswith(prefix):
                    try:
                        yield _parse(raw)
                    except (ValueError, TypeError):
                        continue

    def latest(self, task_id, step_number):
        """The newest waiting event of a step (by event time), or None."""
        newest = None
        for event in self._events_starting(task_id=task_id, step_number=step_number):
            if newest is None or event.event_time >= newest.event_time:
                newest = event
        return newest

    def successes(self, task_id, step_definition_hash):
        """How many success events of a step definition in a task wait here (each event_id once)."""
        return len({event.event_id for event in self._events_starting(task_id=task_id)
                    if event.execution_result == "success" and event.step_definition_hash == step_definition_hash})

    # -- replay ---------------------------------------------------------------------------------

    def _claim(self):
        """Move the live spool aside as a new batch, so appends go to a fresh file."""
        with self._locked():
            if self.path.exists() and self.path.stat().st_size:
                os.replace(self.path, self._sibling(f".replay-{time.time_ns():020d}-{os.getpid()}"))

    def reject(self, event, reason):
        """Keep an event the ledger refused for good in the rejected file, and say so."""
        record = dict(event.as_dict(), rejected_because=reason)
        rejected = self._sibling(".rejected")
        with self._locked(), os.fdopen(_open_private(rejected, os.O_WRONLY | os.O_APPEND), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        log.warning("spool: the ledger refused task %s step %s event %s for good (%s); kept in %s",
                    event.task_id, event.step_number, event.event_id, reason, rejected)

    def replay(self, send, until=None):
        """Send every waiting event in order with send(event), which returns record_step's answer,
        raises InvalidEvent when the ledger refuses the event for good, and raises anything else
        when the database cannot take it now. Stops at the first such failure, or once
        time.monotonic() passes until, and remembers how far it got.

        Returns a dict of counts (recorded, stale, duplicate, rejected), 'busy' (another process
        was replaying), 'error' (the failure that stopped it, or None) and 'remaining': 0 when
        the spool is empty, the number of waiting events after a failure, None (some, not
        counted) when until stopped it."""
        counts = {"recorded": 0, "stale": 0, "duplicate": 0, "rejected": 0, "remaining": 0, "busy": False,
                  "error": None}
        with self._locked(".replay.lock", blocking=False) as mine:
            if not mine:  # another process is replaying this spool right now
                counts.update(busy=True, remaining=self.count())
                return counts
            self._claim()
            for batch in self._batches():
                stopped = self._replay_batch(batch, send, until, counts)
                if stopped:
                    counts["remaining"] = None if counts["error"] is None else self.count()
                    return counts
                batch.unlink()
                Path(str(batch) + ".sent").unlink(missing_ok=True)
        return counts

    def _replay_batch(self, batch, send, until, counts):
        """Send one batch from where the last replay left it. True when it stopped early."""
        offset = self._sent(batch)
        with open(batch, "rb") as f:
            f.seek(offset)
            number = 0
            while True:
                if until is not None and time.monotonic() >= until:
                    self._remember(batch, offset)
                    return True
                raw = f.readline()
                if not raw:
                    return False
                number += 1
                try:
                    event = _parse(raw) if raw.strip() else None
                except (ValueError, TypeError) as exc:
                    log.warning("spool: skipping unreadable line %d of %s (torn by a crash?): %s",
                                number, batch, exc)
                    event = None
                if event is not None:
                    try:
                        counts[send(event)] += 1
                    except InvalidEvent as exc:
                        self.reject(event, str(exc))
                        counts["rejected"] += 1
                    except Exception as exc:
                        self._remember(batch, offset)
                        counts["error"] = exc
                        return True
                offset = f.tell()

    @staticmethod
    def _remember(batch, offset):
        """Write how far into batch the replay got (only the replayer touches it)."""
        tmp = Path(str(batch) + ".sent.tmp")
        with os.fdopen(_open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w") as f:
            f.write(str(offset))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, str(batch) + ".sent")

