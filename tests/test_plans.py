"""The hot statements' plans cannot go wrong, whatever the statistics: on tables never analyzed,
on tables where 95% of the steps succeeded, and in a session whose plans were cached while the
tables were empty (the executor's long-lived connection on a new install). The retry checks reach
a step's row through the unique (task_id, step_number) index (step_succeeded, begin_step by
position) or a definition's successes through their own key (begin_step by definition); no hot
call scans a whole table or goes through the result or type index. record_step's writes reach a
key index: the unique one, or, with plans cached on an empty table, the task's, whose cost is
bounded by the steps of one task. Counted with the transaction's own scan statistics
(pg_stat_get_xact_numscans), so the real functions' real plans are what is checked."""

import hashlib

import pytest

TASKS, STEPS = 500, 20
RELATIONS = ("jr_step_rewards", "jr_step_definition_successes", "jr_step_rewards_task_id_step_number_key",
             "idx_step_rewards_task", "idx_step_rewards_outcome", "idx_step_rewards_type",
             "jr_step_definition_successes_pkey")
TASK, STEP = TASKS // 2, STEPS // 2


def definition(task, step):
    return hashlib.sha256(f"step {task * 100 + step}".encode()).hexdigest()


def fill(cluster, db, success_share):
    """TASKS x STEPS steps, success_share of them succeeded (the probed one, TASK and STEP, always),
    each with a definition and its successes."""
    cluster.admin(f"""
        INSERT INTO jr_step_rewards (task_id, step_number, step_type, execution_result, attempts, step_definition_hash)
        SELECT t, s, 'bash', CASE WHEN (t + s) % 20 < {success_share * 20} THEN 'success' ELSE 'failed' END, 1,
               encode(sha256(convert_to('step ' || (t * 100 + s), 'UTF8')), 'hex')
        FROM generate_series(1, {TASKS}) t, generate_series(0, {STEPS - 1}) s;
        INSERT INTO jr_step_definition_successes (task_id, step_definition_hash, successes, last_success_at)
        SELECT task_id, step_definition_hash, 1, now() FROM jr_step_rewards
        WHERE execution_result = 'success' AND step_definition_hash IS NOT NULL;
    """, dbname=db)


HOT_CALLS = {
    "step_succeeded": ("SELECT step_succeeded(%s, %s)", (TASK, STEP)),
    "begin_step by definition": ("SELECT begin_step(%s, %s, 'bash', NULL, %s, 1)",
                                 (TASK, STEP, definition(TASK, STEP))),
    "begin_step by position": ("SELECT begin_step(%s, %s, 'bash', NULL)", (TASK + 1, STEP)),
    "record_step": ("SELECT record_step(%s, %s, 'bash', NULL, 'success', 3)", (TASK + 2, STEP)),
}


def scans(cur):
    cur.execute("SELECT relname, pg_stat_get_xact_numscans(oid) FROM pg_class WHERE relname = ANY(%s)",
                (list(RELATIONS),))
    return dict(cur.fetchall())


def scans_per_call(conn):
    """{call: {relation: scans it made}}, in one transaction that is rolled back."""
    found = {}
    with conn.cursor() as cur:
        for name, (sql, params) in HOT_CALLS.items():
            before = scans(cur)
            cur.execute(sql, params)
            after = scans(cur)
            found[name] = {rel: after[rel] - before[rel] for rel in RELATIONS if after[rel] - before[rel]}
    conn.rollback()
    return found


def assert_plans_cannot_go_wrong(found, record_step_keys=("jr_step_rewards_task_id_step_number_key",)):
    assert found["step_succeeded"] == {"jr_step_rewards_task_id_step_number_key": 1}, found
    assert found["begin_step by definition"] == {"jr_step_definition_successes_pkey": 1}, found
    assert set(found["begin_step by position"]) == {"jr_step_rewards_task_id_step_number_key"}, found
    assert found["record_step"] and set(found["record_step"]) <= set(record_step_keys), found


@pytest.mark.parametrize("analyzed, success_share", [(False, 0.5), (True, 0.95)],
                         ids=["never analyzed", "95% success, analyzed"])
def test_the_checks_use_their_keys_on_a_filled_table(cluster, fresh_db, analyzed, success_share):
    assert cluster.migrate(fresh_db).returncode == 0
    fill(cluster, fresh_db, success_share)
    if analyzed:
        cluster.admin("ANALYZE jr_step_rewards; ANALYZE jr_step_definition_successes", dbname=fresh_db)
    conn = cluster.connect(fresh_db)
    try:
        found = scans_per_call(conn)
    finally:
        conn.close()
    assert_plans_cannot_go_wrong(found)
    if not analyzed:
        assert cluster.admin("SELECT reltuples FROM pg_class WHERE relname = 'jr_step_rewards'",
                             dbname=fresh_db) == [(-1,)], "the table was analyzed behind the test's back"


def test_plans_cached_while_the_tables_were_empty_stay_right_as_they_grow(cluster, fresh_db):
    assert cluster.migrate(fresh_db).returncode == 0
    conn = cluster.connect(fresh_db)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:  # enough calls for PL/pgSQL to settle on its cached plans
            for n in range(10):
                for sql, params in HOT_CALLS.values():
                    cur.execute(sql, (-1000 - n, *params[1:]))
        fill(cluster, fresh_db, 0.95)
        conn.autocommit = False
        found = scans_per_call(conn)
    finally:
        conn.close()
    assert_plans_cannot_go_wrong(
        found, record_step_keys=("jr_step_rewards_task_id_step_number_key", "idx_step_rewards_task"))
