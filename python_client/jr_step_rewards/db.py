"""The thin caller: one SQL statement per call, the caller's connection, no rules of its own.
It raises whatever psycopg2 raises; resilience lives in recorder.py."""

RECORD_STEP = """SELECT public.record_step(task_id => %(task_id)s, step_number => %(step_number)s,
    step_type => %(step_type)s, target_file => %(target_file)s, execution_result => %(execution_result)s,
    execution_time_ms => %(execution_time_ms)s, error_detail => %(error_detail)s,
    recorded_at => %(recorded_at)s::timestamptz, event_id => %(event_id)s::uuid, executor => %(executor)s)"""
STEP_SUCCEEDED = """SELECT public.step_succeeded(task_id => %(task_id)s, step_number => %(step_number)s,
    step_content_hash => %(step_content_hash)s)"""


def record_step(conn, task_id, step_number, step_type, target_file, execution_result, execution_time_ms,
                error_detail=None, recorded_at=None, event_id=None, executor=None):
    """record_step(): 'recorded', 'stale' or 'duplicate'."""
    params = locals()
    with conn.cursor() as cur:
        cur.execute(RECORD_STEP, params)
        return cur.fetchone()[0]


def step_succeeded(conn, task_id, step_number, step_content_hash=None):
    """step_succeeded(): True when the step's current result is success (and the hash matches)."""
    params = locals()
    with conn.cursor() as cur:
        cur.execute(STEP_SUCCEEDED, params)
        return cur.fetchone()[0]


TASK_STEPS = """SELECT step_number, step_type, execution_result, attempts, execution_time_ms, updated_at,
    target_file, error_detail
FROM public.jr_step_rewards WHERE task_id = %(task_id)s ORDER BY step_number"""
STEP_TYPE_STATS = """SELECT step_type, count(*) AS steps, sum(attempts) AS attempts,
    count(*) FILTER (WHERE execution_result = 'success') AS succeeded,
    count(*) FILTER (WHERE execution_result = 'failed') AS failed,
    count(*) FILTER (WHERE execution_result = 'pending') AS pending,
    round(avg(execution_time_ms)) AS avg_ms
FROM public.jr_step_rewards GROUP BY step_type ORDER BY step_type"""


def task_steps(conn, task_id):
    """The current state of each step of a task, in step order (needs SELECT: jr_reader)."""
    with conn.cursor() as cur:
        cur.execute(TASK_STEPS, {"task_id": task_id})
        return cur.fetchall()


def step_type_stats(conn):
    """Per step type: steps, attempts, succeeded, failed, pending, mean time (needs SELECT: jr_reader)."""
    with conn.cursor() as cur:
        cur.execute(STEP_TYPE_STATS)
        return cur.fetchall()
