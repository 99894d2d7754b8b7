"""The durable spool: step events that could not reach the database wait here, one JSON object per
line, flushed and fsynced before the executor moves on.

Files, all beside the spool path:
    spool.jsonl              appended to by every recorder (under spool.jsonl.lock, held for one write)
    spool.jsonl.replay-*     batches claimed by a replay: renamed away under the same lock, so no
                             writer can still be appending to them
    spool.jsonl.rejected     events the ledger refused for good (bad input), kept for a person to read

A crash can leave a torn last line. The next append first ends it with a newline, so it can never
swallow the record after it, and replay skips it with a warning.
"""

import datetime
import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .records import InvalidEvent, StepEvent

log = logging.getLogger("jr_step_rewards")


def default_spool_path():
    """$JR_STEP_SPOOL, else $XDG_STATE_HOME/jr-step-rewards/spool.jsonl (~/.local/state by default)."""
    if os.environ.get("JR_STEP_SPOOL"):
        return Path(os.environ["JR_STEP_SPOOL"])
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "jr-step-rewards" / "spool.jsonl"


class Spool:
    def __init__(self, path=None):
        self.path = Path(path) if path else default_spool_path()

    def _sibling(self, suffix):
        return self.path.with_name(self.path.name + suffix)

    @contextmanager
    def _locked(self, suffix=".lock", blocking=True):
        """An exclusive flock on a sibling lock file; yields False when not blocking and it is taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._sibling(suffix), os.O_RDWR | os.O_CREAT, 0o600)
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
        line = json.dumps(event.as_dict(), ensure_ascii=False).encode() + b"\n"
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # end a line torn by a crash before adding ours
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _batches(self):
        return sorted(p for p in self.path.parent.glob(self.path.name + ".replay-*") if p.suffix != ".tmp")

    def _files(self):
        return [*self._batches(), self.path]

    def is_empty(self):
        return not any(p.exists() and p.stat().st_size for p in self._files())

    @staticmethod
    def _read(path, warn):
        """The events in one file, in order; unreadable (torn) lines are skipped."""
        events = []
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return events
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                events.append(StepEvent.from_dict(json.loads(raw)))
            except (ValueError, TypeError) as exc:
                if warn:
                    log.warning("spool: skipping unreadable line %d of %s (torn by a crash?): %s", number, path, exc)
        return events

    def events(self):
        """Every spooled event, oldest file first, without warnings (a writer may be mid-line)."""
        return [event for path in self._files() for event in self._read(path, warn=False)]

    def latest(self, task_id, step_number):
        """The newest spooled event of a step (by event time), or None."""
        mine = [e for e in self.events() if e.task_id == task_id and e.step_number == step_number]
        return max(mine, key=lambda e: datetime.datetime.fromisoformat(e.recorded_at), default=None)

    def _claim(self):
        """Move the live spool aside as a new batch, so appends go to a fresh file."""
        with self._locked():
            if self.path.exists() and self.path.stat().st_size:
                os.replace(self.path, self._sibling(f".replay-{time.time_ns():020d}-{os.getpid()}"))

    def reject(self, event, reason):
        """Keep an event the ledger refused for good in the rejected file, and say so."""
        record = dict(event.as_dict(), rejected_because=reason)
        with self._locked(), open(self._sibling(".rejected"), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        log.warning("spool: the ledger refused task %s step %s event %s for good (%s); kept in %s",
                    event.task_id, event.step_number, event.event_id, reason, self._sibling(".rejected"))

    def replay(self, send, until=None):
        """Send every spooled event in order with send(event), which returns record_step's answer,
        raises InvalidEvent when the ledger refuses the event for good, and raises anything else
        when the database cannot take it now. Stops at the first such failure, or once
        time.monotonic() passes until, and keeps what is left. Returns a dict of counts,
        'remaining' (0 when the spool is empty), 'busy' (another process was replaying) and
        'error' (the failure that stopped it, or None)."""
        counts = {"recorded": 0, "stale": 0, "duplicate": 0, "rejected": 0, "remaining": 0, "busy": False,
                  "error": None}
        with self._locked(".replay.lock", blocking=False) as mine:
            if not mine:  # another process is replaying this spool right now
                counts["busy"] = True
                counts["remaining"] = len(self.events())
                return counts
            self._claim()
            for batch in self._batches():
                events = self._read(batch, warn=True)
                for index, event in enumerate(events):
                    if until is not None and time.monotonic() >= until:
                        self._keep(batch, events[index:])
                        counts["remaining"] = len(self.events())
                        return counts
                    try:
                        counts[send(event)] += 1
                    except InvalidEvent as exc:
                        self.reject(event, str(exc))
                        counts["rejected"] += 1
                    except Exception as exc:
                        self._keep(batch, events[index:])
                        counts["remaining"] = len(self.events())
                        counts["error"] = exc
                        return counts
                batch.unlink()
        return counts

    @staticmethod
    def _keep(batch, events):
        """Rewrite a claimed batch with the events not yet sent (only the replayer touches it)."""
        tmp = batch.with_name(batch.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(e.as_dict(), ensure_ascii=False) + "\n" for e in events)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, batch)
