"""Step-level ledger for the Jr task executor.

    from jr_step_rewards import StepRecorder, StepTrackingMixin

db          the thin caller: record_step(conn, ...), step_succeeded(conn, ...)
recorder    StepRecorder: never blocks, never raises, spools what the database cannot take
failures    what went wrong, classified once (outage, a person's fix, bad input) and told with its fix
mixin       StepTrackingMixin: the seed's executor hooks, ready to inherit
executor    TaskExecutor: a reference executor built on the mixin
"""

from .executor import TaskExecutor
from .mixin import StepTrackingMixin
from .recorder import StepRecorder

__all__ = ["StepRecorder", "StepTrackingMixin", "TaskExecutor"]
__version__ = "0.1.0"
