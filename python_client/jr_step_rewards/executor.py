"""TaskExecutor: a small reference executor that proves the whole loop.

It runs a task's steps in order, records each one (pending, then its outcome, timed), stops at the
first failed step, and on a retry skips every step whose definition already succeeded in the task,
wherever the retry's plan now puts it.
The real Jr executor gets the same behaviour by inheriting StepTrackingMixin (see mixin.py).
"""

import dataclasses
import os
from typing import Callable

from .editor import apply_search_replace
from .mixin import StepTrackingMixin
from .runner import run_bash


@dataclasses.dataclass
class TaskSummary:
    task_id: int
    ran: list[int] = dataclasses.field(default_factory=list)
    skipped: list[int] = dataclasses.field(default_factory=list)
    failed: list[int] = dataclasses.field(default_factory=list)
    error: str = ""

    @property
    def succeeded(self):
        return not self.failed


class TaskExecutor(StepTrackingMixin):
    def __init__(self, db_config=None, workdir=".", bash_timeout=600, say: Callable[[str], None] = print):
        if db_config is not None:
            self.db_config = db_config
        self.workdir = os.path.abspath(workdir)
        self.bash_timeout = bash_timeout
        self.say = say

    def run_task(self, task_id, steps):
        """Run steps (instructions.Step) of task_id; returns a TaskSummary."""
        summary = TaskSummary(task_id)
        self._current_task_id = task_id
        for step in steps:
            self._current_step_number = step.number
            label = f"step {step.number} {step.step_type}" + (f" {step.target_file}" if step.target_file else "")
            definition = step.as_mapping()
            if self._step_already_succeeded(task_id, step.number, step=definition):
                summary.skipped.append(step.number)
                self.say(f"  {label}: skipped, already succeeded")
                continue
            with self.tracked_step(step=definition) as tracked:
                tracked.result = self._execute(step)
            summary.ran.append(step.number)
            if not tracked.result["success"]:
                summary.failed.append(step.number)
                summary.error = tracked.result["error"]
                self.say(f"  {label}: FAILED in {tracked.execution_time_ms} ms: {tracked.result['error']}")
                break
            note = " (already in place, file untouched)" if tracked.result.get("changed") is False else ""
            self.say(f"  {label}: ok in {tracked.execution_time_ms} ms{note}")
        self._current_step_number = None
        return summary

    def _execute(self, step):
        if step.step_type == "search_replace":
            return apply_search_replace(os.path.join(self.workdir, step.target_file), step.search, step.replace)
        if step.step_type == "bash":
            return run_bash(step.command, self.workdir, self.bash_timeout)
        return {"success": False, "error": f"unknown step type {step.step_type!r}"}
