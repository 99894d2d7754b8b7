"""The thin caller: one SQL statement per call, the caller's connection, no rules of its own.
It raises whatever psycopg2 raises; resilience lives in recorder.py."""

# Named notation in SQL, values passed in order: the hot calls, kept short (make bench measures them).
# Every value is cast to its parameter's exact type, so the call matches the ledger's function
# exactly: psycopg2 sends strings and None untyped, and an overload someone else created in public
# with text where the ledger has timestamptz or uuid would otherwise be the better match. CAST, not
# ::, which would bind before the minus of -2147483648 and overflow. An integer goes through text,
# so that True or 7.6 is refused (22P02) as it was before the casts, not taken for 1 or 8.
RECORD_STEP = """SELECT public.record_step(task_id => CAST(CAST(%s AS text) AS integer),
    step_number => CAST(CAST(%s AS text) AS integer), step_type => CAST(%s AS text), target_file => CAST(%s AS text),
    execution_result => CAST(%s AS text), execution_time_ms => CAST(CAST(%s AS text) AS integer),
    error_detail => CAST(%s AS text), recorded_at => CAST(%s AS timestamptz), event_id => CAST(%s AS uuid),
    executor => CAST(%s AS text), step_definition_hash => CAST(%s AS text))"""
BEGIN_STEP = """SELECT public.begin_step(task_id => CAST(CAST(%s AS text) AS integer),
    step_number => CAST(CAST(%s AS text) AS integer), step_type => CAST(%s AS text), target_file => CAST(%s AS text),
    step_definition_hash => CAST(%s AS text), occurrence => CAST(CAST(%s AS text) AS integer),
    recorded_at => CAST(%s AS timestamptz), event_id => CAST(%s AS uuid), executor => CAST(%s AS text))"""
STEP_SUCCEEDED = """SELECT public.step_succeeded(task_id => CAST(CAST(%s AS text) AS integer),
    step_number => CAST(CAST(%s AS text) AS integer), step_content_hash => CAST(%s AS text))"""
SET_STEP_REWARD = """SELECT public.set_step_reward(task_id => CAST(CAST(%(task_id)s AS text) AS integer),
    step_number => CAST(CAST(%(step_number)s AS text) AS integer),
    implicit_reward => CAST(%(implicit_reward)s AS float8), verified_outcome => CAST(%(verified_outcome)s AS text),
    retry_decision => CAST(%(retry_decision)s AS text))"""
RECORD_EXPLORATION = """SELECT public.record_exploration(jr_type => CAST(%(jr_type)s AS text),
    task_type => CAST(%(task_type)s AS text), novelty_score => CAST(%(novelty_score)s AS float8),
    curiosity_bonus => CAST(%(curiosity_bonus)s AS float8), task_outcome => CAST(%(task_outcome)s AS text))"""


def record_step(conn, task_id, step_number, step_type, target_file, execution_result, execution_time_ms,
                error_detail=None, recorded_at=None, event_id=None, executor=None, step_definition_hash=None):
    """record_step(): 'recorded', 'stale' or 'duplicate'."""
    with conn.cursor() as cur:
        cur.execute(RECORD_STEP, (task_id, step_number, step_type, target_file, execution_result, execution_time_ms,
                                  error_detail, recorded_at, event_id, executor, step_definition_hash))
        return cur.fetchone()[0]


def begin_step(conn, task_id, step_number, step_type, target_file, step_definition_hash=None, occurrence=1,
               recorded_at=None, event_id=None, executor=None):
    """begin_step(): 'skip' (it already succeeded) or 'run' (its pending marker is recorded)."""
    with conn.cursor() as cur:
        cur.execute(BEGIN_STEP, (task_id, step_number, step_type, target_file, step_definition_hash, occurrence,
                                 recorded_at, event_id, executor))
        return cur.fetchone()[0]


def step_succeeded(conn, task_id, step_number, step_content_hash=None):
    """step_succeeded(): True when the step's current result is success (and the hash matches)."""
    with conn.cursor() as cur:
        cur.execute(STEP_SUCCEEDED, (task_id, step_number, step_content_hash))
        return cur.fetchone()[0]


def set_step_reward(conn, task_id, step_number, implicit_reward, verified_outcome=None, retry_decision=None):
    """set_step_reward(): write a step's reward fields; None leaves a field unchanged."""
    params = locals()
    with conn.cursor() as cur:
        cur.execute(SET_STEP_REWARD, params)


def record_exploration(conn, jr_type, task_type, novelty_score=None, curiosity_bonus=None, task_outcome=None):
    """record_exploration(): append to jr_exploration_log; returns the new row's id."""
    params = locals()
    with conn.cursor() as cur:
        cur.execute(RECORD_EXPLORATION, params)
        return cur.fetchone()[0]


TASK_STEPS = """SELECT step_number, step_type, execution_result, attempts, execution_time_ms, updated_at,
    target_file, error_detail
FROM public.jr_step_rewards WHERE task_id = %(task_id)s ORDER BY step_number"""
STEP_TYPE_STATS = """SELECT step_type, steps, attempts, failed_attempts, success_rate, steps_succeeded, p50_ms, p95_ms,
    last_seen FROM public.jr_step_type_stats ORDER BY step_type"""
STEP_TYPE_STATS_COLUMNS = ["step_type", "steps", "attempts", "failed", "success_rate", "succeeded_now", "p50_ms",
                           "p95_ms", "last_seen"]


def task_steps(conn, task_id):
    """The current state of each step of a task, in step order (needs SELECT: jr_reader)."""
    with conn.cursor() as cur:
        cur.execute(TASK_STEPS, {"task_id": task_id})
        return cur.fetchall()


def step_type_stats(conn):
    """The view jr_step_type_stats, by step type (needs SELECT: jr_reader)."""
    with conn.cursor() as cur:
        cur.execute(STEP_TYPE_STATS)
        return cur.fetchall()
