"""What one recorded step event is, and how its text is made safe to send.

A StepEvent is what the recorder sends to record_step() and, when the database cannot be reached,
what it writes to the spool: the same fields, an event_id that makes replays idempotent, and the
event time that decides which event is newest.
"""

import dataclasses
import datetime
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from typing import Optional

RESULTS = ("pending", "success", "failed")
INT32 = (-(2**31), 2**31 - 1)
# The ledger's cut for error_detail (db/functions/record_step.sql). Cutting here first, the same
# way, keeps a 10 MB stderr off the wire and out of the spool; a test holds the two in step.
ERROR_DETAIL_MAX = 16384


def clean_text(value):
    """Text PostgreSQL will take: bytes decoded as UTF-8 with replacement, lone surrogates
    replaced, NUL characters removed. None stays None."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    elif not isinstance(value, str):
        value = str(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Undecodable bytes carried as surrogates (os.fsdecode, surrogateescape) become U+FFFD.
        value = value.encode("utf-8", errors="surrogateescape" if _only_escapes(value) else "replace")
        value = value.decode("utf-8", errors="replace")
    return value.replace("\x00", "")


def _only_escapes(value):
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in value)


def elide_middle(value, max_chars):
    """jr_elide_middle() in Python: head and tail around a marker counting the cut characters."""
    if value is None or len(value) <= max_chars:
        return value
    total = len(value)
    keep = max(max_chars - len(f"…[{total} characters cut]…"), 0)
    keep = max(max_chars - len(f"…[{total - keep} characters cut]…"), 0)
    return value[: (keep + 1) // 2] + f"…[{total - keep} characters cut]…" + value[len(value) - keep // 2:]


def content_hash(task_id, step_number, step_type, target_file):
    """The seed's step_content_hash: SHA-256 hex of f"{task_id}:{step_number}:{step_type}:{target_file}"."""
    return hashlib.sha256(f"{task_id}:{step_number}:{step_type}:{target_file}".encode()).hexdigest()


# Keys that say how or why a step runs, not what it does: a step re-planned with another timeout,
# description or place in the plan is the same step. Everything else (the type, the target, the
# search and replace text, the command and its cwd, the SQL, ...) is its definition.
NOT_DEFINITION = frozenset({
    "timeout", "critical", "description", "title", "name", "comment", "notes", "reason", "rationale",
    "id", "step_id", "step_number", "index", "retries", "max_retries",
})
HASH_HEX = re.compile(r"[0-9a-f]{64}")


def step_definition_hash(step):
    """SHA-256 hex of a step mapping's definition: its keys but NOT_DEFINITION, at the top and in
    'args', as canonical JSON (sorted keys, no spaces, text as given). The content stays here; only
    this hash reaches the ledger."""
    def definition(mapping):
        return {key: definition(value) if key == "args" and isinstance(value, Mapping) else value
                for key, value in mapping.items() if key not in NOT_DEFINITION}
    canonical = json.dumps(definition(step), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def step_type_of(step):
    """The step's type as the executor names it ('unknown' when it has none)."""
    return str(step.get("type") or "unknown")


def step_target_of(step):
    """The file a step acts on: 'path' or 'filepath', at the top or in 'args' (search_replace keeps
    it there); None when it has none."""
    args = step.get("args") if isinstance(step.get("args"), Mapping) else {}
    for found in (step.get("path"), step.get("filepath"), args.get("path"), args.get("filepath")):
        if found:
            return str(found)
    return None


class InvalidEvent(ValueError):
    """An event the ledger would refuse whatever its state: recording it again cannot succeed."""


@dataclasses.dataclass(frozen=True)
class StepEvent:
    task_id: int
    step_number: int
    step_type: str
    target_file: Optional[str]
    execution_result: str
    execution_time_ms: Optional[int] = None
    error_detail: Optional[str] = None
    recorded_at: str = ""
    event_id: str = ""
    executor: Optional[str] = None
    step_definition_hash: Optional[str] = None

    @classmethod
    def create(cls, task_id, step_number, step_type, target_file, execution_result,
               execution_time_ms=None, error_detail=None, executor=None, step_definition_hash=None):
        """A new event, timed now, with a fresh event_id and its text cleaned."""
        return cls(step_definition_hash=step_definition_hash,
            task_id=task_id, step_number=step_number, step_type=clean_text(step_type),
            target_file=clean_text(target_file), execution_result=execution_result,
            execution_time_ms=None if execution_time_ms is None else int(round(execution_time_ms)),
            error_detail=elide_middle(clean_text(error_detail), ERROR_DETAIL_MAX),
            recorded_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
            event_id=str(uuid.uuid4()), executor=clean_text(executor),
        ).checked()

    def checked(self):
        """self, or InvalidEvent naming what the ledger would refuse, so it is never retried."""
        for name in ("task_id", "step_number", "execution_time_ms"):
            value = getattr(self, name)
            if value is None and name == "execution_time_ms":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not INT32[0] <= value <= INT32[1]:
                raise InvalidEvent(f"{name} must be a 32-bit integer, got {value!r}")
        definition = self.step_definition_hash
        if definition is not None and not (isinstance(definition, str) and HASH_HEX.fullmatch(definition)):
            raise InvalidEvent(f"step_definition_hash must be 64 lowercase hex digits, got {definition!r}")
        if self.execution_result not in RESULTS:
            raise InvalidEvent(f"execution_result must be one of {', '.join(RESULTS)}, got {self.execution_result!r}")
        try:
            _ = self.event_time  # parsed once here, so a bad one is refused at the door
        except (TypeError, ValueError) as exc:
            raise InvalidEvent(f"recorded_at must be an ISO 8601 time with a time zone, got {self.recorded_at!r}") \
                from exc
        return self

    @property
    def event_time(self):
        """recorded_at as an aware datetime."""
        parsed = datetime.datetime.fromisoformat(self.recorded_at)
        if parsed.tzinfo is None:
            raise ValueError("no time zone")
        return parsed

    @property
    def content_hash(self):
        return content_hash(self.task_id, self.step_number, self.step_type, self.target_file)

    def as_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields}).checked()
