"""StepTrackingMixin: the seed's executor hooks (steps 3 to 7), ready to inherit.

    class TaskExecutor(StepTrackingMixin, ...):      # the one-line change
        def process_task(self, task):
            self._current_task_id = task["id"]      # where the task starts
        def execute_steps(self, steps):
            for step_index, step in enumerate(steps):
                if self._step_already_succeeded(task_id, step_index, step=step):
                    continue                          # this very step already succeeded in the task
                ...
                self._record_step_result(task_id, step_index, ..., result, elapsed_ms, step=step)

Given the step mapping, a step is known by its definition, not its number: the executor re-plans
its steps on every retry, so numbers shift. Recording never raises and never blocks past the
recorder's deadline (see recorder.py).
"""

import logging
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import contextmanager

from .recorder import StepRecorder
from .records import step_definition_hash, step_target_of, step_type_of

log = logging.getLogger("jr_step_rewards")


def _outcome(result):
    """(success, error detail) from what a step returned: the seed's dict with 'success' and
    'error', or a bare bool; anything else counts as a failure that says what it was."""
    if isinstance(result, Mapping):
        success = bool(result.get("success"))
        return success, None if success else result.get("error")
    if isinstance(result, bool):
        return result, None if result else "the step returned False"
    return False, f"the step returned {result!r}, not a dict with 'success'"


class TrackedStep:
    """What tracked_step yields: set .result to the editor's or runner's dict."""

    def __init__(self):
        self.result = None
        self.execution_time_ms = None


class StepTrackingMixin:
    _current_step_number = None
    _step_recorder = None
    _task_id = None
    _said_no_task_id = False
    _plan = None  # (task_id, last step number seen, Counter of definitions seen) of the plan being run
    _begun = None  # (task_id, step_number) whose pending marker _step_already_succeeded recorded

    @property
    def _current_task_id(self):
        """The task being run; the executor sets it where the task starts. Read while unset, it
        says so once per executor, as an ERROR: every step of this executor goes untracked."""
        if self._task_id is None and not self._said_no_task_id:
            self._said_no_task_id = True
            log.error("jr_step_rewards: %s._current_task_id is not set, so its steps are neither recorded nor "
                      "skipped on a retry: set self._current_task_id to the task's id (its queue row's id) where "
                      "the task starts", type(self).__name__)
        return self._task_id

    @_current_task_id.setter
    def _current_task_id(self, task_id):
        self._task_id = task_id

    @property
    def step_recorder(self):
        """The StepRecorder, built on first use from self.db_config when the executor has one,
        otherwise from the libpq variables. Assign one to share or configure it."""
        if self._step_recorder is None:
            config = getattr(self, "db_config", None)
            self._step_recorder = StepRecorder(dsn=config) if isinstance(config, str) else StepRecorder(config)
        return self._step_recorder

    @step_recorder.setter
    def step_recorder(self, recorder):
        self._step_recorder = recorder

    def _record_step_result(self, task_id, step_number, step_type, target_file, result, execution_time_ms, *,
                            step=None):
        """Record step-level execution result for reward tracking (seed step 3). result is the
        editor's or runner's dict: 'success' decides the result, 'error' becomes the error detail.
        step, the step's mapping, records its definition too, and its real type and target when
        step_type or target_file is empty (a search_replace keeps its path in 'args'; a step whose
        type is null comes as step_type=None, which the ledger would refuse), as begin_step did."""
        success, error = _outcome(result)
        definition = None
        if step is not None:
            definition = step_definition_hash(step)
            step_type, target_file = step_type or step_type_of(step), target_file or step_target_of(step)
        return self.step_recorder.record_step(task_id, step_number, step_type, target_file,
                                              "success" if success else "failed", execution_time_ms, error, definition)

    def _record_step_pending(self, task_id, step_number, step_type, target_file):
        """Mark the step as about to run."""
        return self.step_recorder.record_step(task_id, step_number, step_type, target_file, "pending")

    def _step_already_succeeded(self, task_id, step_number, step_content_hash=None, *, step=None):
        """Check if this step already succeeded, for retry idempotency (seed step 6). False when unsure.

        With step, the step's mapping: has this definition already succeeded in this task, as many
        times as it has occurred so far in this plan? Wherever it now stands. When it has not, the
        same round trip records it as pending. Without step: the seed's check by number."""
        if step is None:
            return self.step_recorder.step_succeeded(task_id, step_number, step_content_hash)
        definition = step_definition_hash(step)
        occurrence = self._occurrence(task_id, step_number, definition)
        run = self.step_recorder.begin_step(task_id, step_number, step_type_of(step), step_target_of(step),
                                            definition, occurrence)
        self._begun = (task_id, step_number) if run else None
        return not run

    def _occurrence(self, task_id, step_number, definition):
        """The how-manyth time this definition occurs in the plan being run. A plan is a pass over
        the steps in order: a number not above the last one, or another task, starts a new one."""
        task, last, seen = self._plan or (None, None, None)
        if task != task_id or step_number <= last:
            seen = Counter()
        seen[definition] += 1
        self._plan = (task_id, step_number, seen)
        return seen[definition]

    @contextmanager
    def tracked_step(self, step_type=None, target_file=None, task_id=None, step_number=None, *, step=None):
        """Time the block and record it: pending before, the outcome after. Task and step number
        default to _current_task_id and _current_step_number; step, the step's mapping, gives its
        type, target and definition (and the pending marker already recorded by
        _step_already_succeeded(..., step=step) is not recorded twice). The step counts as failed
        when the block raises (the exception goes on to the caller) or sets a result whose
        'success' is false. Without a task id nothing is recorded (_current_task_id says so once)."""
        task_id = self._current_task_id if task_id is None else task_id
        step_number = self._current_step_number if step_number is None else step_number
        if step is not None:
            step_type, target_file = step_type or step_type_of(step), target_file or step_target_of(step)
        tracking = task_id is not None
        if tracking and (step is None or self._begun != (task_id, step_number)):
            self._record_step_pending(task_id, step_number, step_type, target_file)
        self._begun = None
        tracked = TrackedStep()
        started = time.monotonic()
        try:
            yield tracked
        except BaseException as exc:
            tracked.result = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
            raise
        finally:
            tracked.execution_time_ms = int((time.monotonic() - started) * 1000)
            result = tracked.result if tracked.result is not None else {"success": True}
            if tracking:
                self._record_step_result(task_id, step_number, step_type, target_file, result,
                                         tracked.execution_time_ms, step=step)
