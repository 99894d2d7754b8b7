"""StepTrackingMixin: the seed's executor hooks (steps 3 to 7), ready to inherit.

    class TaskExecutor(StepTrackingMixin, ...):      # the one-line change
        ...
        with self.tracked_step("search_replace", filepath) as step:
            step.result = editor.apply_search_replace(filepath, search_text, replace_text)

Recording never raises and never blocks past the recorder's deadline (see recorder.py).
"""

import time
from collections.abc import Mapping
from contextlib import contextmanager

from .recorder import StepRecorder


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
    _current_task_id = None
    _current_step_number = None
    _step_recorder = None

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

    def _record_step_result(self, task_id, step_number, step_type, target_file, result, execution_time_ms):
        """Record step-level execution result for reward tracking (seed step 3). result is the
        editor's or runner's dict: 'success' decides the result, 'error' becomes the error detail."""
        success, error = _outcome(result)
        return self.step_recorder.record_step(
            task_id, step_number, step_type, target_file, "success" if success else "failed", execution_time_ms, error)

    def _record_step_pending(self, task_id, step_number, step_type, target_file):
        """Mark the step as about to run."""
        return self.step_recorder.record_step(task_id, step_number, step_type, target_file, "pending")

    def _step_already_succeeded(self, task_id, step_number, step_content_hash=None):
        """Check if this step already succeeded, for retry idempotency (seed step 6). False when unsure."""
        return self.step_recorder.step_succeeded(task_id, step_number, step_content_hash)

    @contextmanager
    def tracked_step(self, step_type, target_file=None, task_id=None, step_number=None):
        """Time the block and record it: pending before, the outcome after. Task and step default
        to _current_task_id and _current_step_number. The step counts as failed when the block
        raises (the exception goes on to the caller) or sets a result whose 'success' is false."""
        task_id = self._current_task_id if task_id is None else task_id
        step_number = self._current_step_number if step_number is None else step_number
        self._record_step_pending(task_id, step_number, step_type, target_file)
        step = TrackedStep()
        started = time.monotonic()
        try:
            yield step
        except BaseException as exc:
            step.result = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
            raise
        finally:
            step.execution_time_ms = int((time.monotonic() - started) * 1000)
            result = step.result if step.result is not None else {"success": True}
            self._record_step_result(task_id, step_number, step_type, target_file, result, step.execution_time_ms)
