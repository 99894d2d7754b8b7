"""What pgTAP cannot see from inside one transaction: concurrent callers, the plans the functions
really use, and that the pgTAP suite leaves a database as it found it."""

import hashlib
import re
import subprocess
import threading
import time

import pytest
from pgcluster import REPO

RECORD = "SELECT record_step(%s, %s, 'bash', NULL, %s, 1, NULL, NULL, %s)"


def in_thread(fn):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", fn()))
    thread.start()
    return thread, box


def wait_until_blocked(cluster, db, timeout=10):
    """Wait until some session of db waits on a lock (the racing call is parked where we want it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = cluster.admin("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                                (db,), dbname=db)[0][0]
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the second call never waited on the first")


def test_racing_first_events_of_a_step_get_distinct_attempt_numbers(cluster, migrated_db):
    first = cluster.connect(migrated_db)
    with first.cursor() as cur:  # first call, not yet committed
        cur.execute(RECORD, (5, 1, "failed", None))
    thread, box = in_thread(lambda: cluster.admin(RECORD, (5, 1, "success", None), dbname=migrated_db))
    wait_until_blocked(cluster, migrated_db)
    first.commit()
    first.close()
    thread.join(10)

    assert box["result"] == [("recorded",)]
    assert cluster.admin("SELECT attempts, execution_result FROM jr_step_rewards WHERE task_id = 5",
                         dbname=migrated_db) == [(2, "success")]
    assert cluster.admin("SELECT attempt_number, execution_result FROM jr_step_attempts WHERE task_id = 5 ORDER BY 1",
                         dbname=migrated_db) == [(1, "failed"), (2, "success")]


def test_a_replay_racing_its_original_is_a_duplicate(cluster, migrated_db):
    event = "b0000000-0000-4000-8000-000000000001"
    first = cluster.connect(migrated_db)
    with first.cursor() as cur:
        cur.execute(RECORD, (6, 1, "success", event))
    thread, box = in_thread(lambda: cluster.admin(RECORD, (6, 1, "success", event), dbname=migrated_db))
    wait_until_blocked(cluster, migrated_db)
    first.commit()
    first.close()
    thread.join(10)

    assert box["result"] == [("duplicate",)]
    assert cluster.admin("SELECT attempts FROM jr_step_rewards WHERE task_id = 6", dbname=migrated_db) == [(1,)]
    assert cluster.admin("SELECT count(*) FROM jr_step_attempts WHERE task_id = 6", dbname=migrated_db) == [(1,)]


def values_taken(cluster, db):
    """How many values each table's id sequence has handed out (none yet: 0)."""
    taken = {}
    for table in ("jr_step_rewards", "jr_step_attempts"):
        [(name,)] = cluster.admin("SELECT pg_get_serial_sequence(%s, 'id')", (f"public.{table}",), dbname=db)
        [(last, called)] = cluster.admin(f"SELECT last_value, is_called FROM {name}", dbname=db)
        taken[table] = last if called else last - 1
    return taken


def test_only_an_event_that_inserts_a_row_takes_a_sequence_value(cluster, migrated_db):
    """The issue's measure, exactly, on a database nobody else writes to: 1000 stale calls moved
    jr_step_rewards_id_seq from 1 to 1001. Now stale events, replays and newer events of a step the
    ledger has take no value of it, replays none of the history's identity either."""
    event = "c0000000-0000-4000-8000-000000000001"
    calls = ("SELECT count(*) FROM (SELECT record_step(9, 1, 'bash', NULL, %s, 1, NULL, %s, %s)"
             " FROM generate_series(1, %s)) c")
    cluster.admin(calls, ("success", "2020-01-01 12:00+00", event, 1), dbname=migrated_db)
    assert values_taken(cluster, migrated_db) == {"jr_step_rewards": 1, "jr_step_attempts": 1}

    cluster.admin(calls, ("failed", "2020-01-01 11:00+00", None, 1000), dbname=migrated_db)
    cluster.admin(calls, ("success", "2020-01-01 12:00+00", event, 100), dbname=migrated_db)
    cluster.admin(calls, ("success", None, None, 100), dbname=migrated_db)
    assert cluster.admin("SELECT attempts FROM jr_step_rewards WHERE task_id = 9", dbname=migrated_db) == [(1101,)]
    assert values_taken(cluster, migrated_db) == {"jr_step_rewards": 1, "jr_step_attempts": 1101}, \
        "1000 stale, 100 replayed and 100 newer events: no step id, and a history id only for each stored event"

    cluster.admin(RECORD, (9, 2, "pending", None), dbname=migrated_db)
    assert values_taken(cluster, migrated_db) == {"jr_step_rewards": 2, "jr_step_attempts": 1102}, \
        "a new step takes exactly one"


def nested_plans(cluster, db, sql):
    """The plans of every statement run inside the functions sql calls, as auto_explain logs them."""
    conn = cluster.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute("LOAD 'auto_explain'")
            cur.execute("SET auto_explain.log_min_duration = 0")
            cur.execute("SET auto_explain.log_nested_statements = on")
            cur.execute("SET client_min_messages = log")
            del conn.notices[:]
            cur.execute(sql)
        return "\n".join(conn.notices)
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def realistic_ledger(cluster, migrated_db):
    """10,000 tasks of 10 steps with fresh statistics, so the planner chooses as in production."""
    cluster.admin("""
        INSERT INTO jr_step_rewards (task_id, step_number, step_type, execution_result, attempts)
        SELECT t, s, CASE WHEN s % 2 = 0 THEN 'bash' ELSE 'search_replace' END, 'success', 1
        FROM generate_series(1, 10000) t, generate_series(1, 10) s""", dbname=migrated_db)
    cluster.admin("ANALYZE jr_step_rewards", dbname=migrated_db)
    return migrated_db


def test_step_succeeded_reads_through_the_unique_index(cluster, realistic_ledger):
    plans = nested_plans(cluster, realistic_ledger, "SELECT step_succeeded(5000, 3, 'abc')")
    assert "Scan using jr_step_rewards_task_id_step_number_key on jr_step_rewards" in plans
    assert "Seq Scan" not in plans


def test_record_step_finds_the_step_through_the_unique_index(cluster, realistic_ledger):
    plans = nested_plans(cluster, realistic_ledger, "SELECT record_step(5000, 3, 'bash', NULL, 'failed', 7)")
    assert "Update on jr_step_rewards" in plans
    scans = re.findall(r"(\w+ Scan)(?: using (\w+))? on jr_step_rewards", plans)
    assert scans and all(index == "jr_step_rewards_task_id_step_number_key" for _, index in scans), scans


def sequence_use(cluster, db):
    rows = cluster.admin("""
        SELECT sequencename::text, CASE WHEN last_value IS NULL THEN 0 ELSE last_value END
        FROM pg_sequences
        WHERE schemaname = 'public'
          AND sequencename IN ('jr_step_rewards_id_seq', 'jr_step_attempts_id_seq', 'jr_exploration_log_id_seq')
        """, dbname=db)
    return dict(rows)


def documented_sequence_use():
    """The figures the README gives for what one pgTAP run consumes."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"consumes (\d+) values of `jr_step_rewards_id_seq`, (\d+) of `jr_step_attempts_id_seq`"
                      r" and (\d+) of `jr_exploration_log_id_seq`", " ".join(readme.split()))
    assert match, "README.md says what a pgTAP run leaves behind"
    return {"jr_step_rewards_id_seq": int(match.group(1)), "jr_step_attempts_id_seq": int(match.group(2)),
            "jr_exploration_log_id_seq": int(match.group(3))}


def test_the_pgtap_suite_leaves_the_database_as_it_found_it(cluster, migrated_db):
    """...and passes on a database with real data in it (plans change with the table's size)."""
    cluster.admin("SELECT record_step(77, 1, 'bash', NULL, 'success', 1)", dbname=migrated_db)
    cluster.admin("""
        INSERT INTO jr_step_rewards (task_id, step_number, step_type, target_file, execution_result, attempts,
                                     failed_attempts)
        SELECT 100 + s / 10, s % 10, 'bash', 'src/f' || s % 50 || '.py', 'failed', 2, 1
        FROM generate_series(0, 19999) s;
        ANALYZE jr_step_rewards""", dbname=migrated_db)
    data_before = cluster.dump(migrated_db, "--data-only", "--exclude-table-data=jr_schema_migrations")
    schema_before = cluster.dump(migrated_db, "--schema-only")
    sequences_before = sequence_use(cluster, migrated_db)

    prove = subprocess.run(["pg_prove", "--ext", ".sql", str(REPO / "db" / "tests")],
                           env=cluster.env(migrated_db), capture_output=True, text=True, timeout=300)
    assert prove.returncode == 0, prove.stdout + prove.stderr
    assert "All tests successful" in prove.stdout

    strip_setval = re.compile(r"^SELECT pg_catalog\.setval.*$", re.M)
    assert strip_setval.sub("", cluster.dump(migrated_db, "--data-only", "--exclude-table-data=jr_schema_migrations")) \
        == strip_setval.sub("", data_before)
    assert cluster.dump(migrated_db, "--schema-only") == schema_before
    assert cluster.admin("SELECT count(*) FROM pg_extension WHERE extname = 'pgtap'", dbname=migrated_db) == [(0,)]
    used = {name: value - sequences_before[name] for name, value in sequence_use(cluster, migrated_db).items()}
    assert used == documented_sequence_use()


# The pgTAP hash vectors (db/tests/03_record_step.sql), each as the seed's Python computes it.
HASH_VECTORS = [
    ((7, 3, "search_replace", "/ganuda/jr_executor/task_executor.py"),
     "6138d70c647a2198040ead4917a1516bd2ce8db778ee11abe10e92326d927eda"),
    ((7, 5, "bash", None), "345e80bb81f36640d3ac866b67e1bb8012a4b4e200e192a5e8470ba33fbfb1e1"),
    ((-900001, 2, "search_replace", "/srv/données/café_日本語.py"),
     "f29d2dd8a7a6511cef175d601ef3d4a1d731d4fd9ad12305c946cca37894d2a3"),
    ((2147483647, 0, "bash", ""), "b7b3e98f7a4dcaf3425e5d485b1f7a18a62138e1af8e220d9c98cc5f6cf69f36"),
    ((-900001, 4, "search_replace", "/p/" + "é" * 600),
     "27a29307a8140d9170df91f03c819a1d97a5e413e0f551622f2d2111bca8b81e"),
]


@pytest.mark.parametrize(("args", "expected"), HASH_VECTORS)
def test_the_hash_vectors_are_pythons_and_the_ledger_agrees(cluster, migrated_db, args, expected):
    task_id, step_number, step_type, target_file = args
    seeds_formula = hashlib.sha256(f"{task_id}:{step_number}:{step_type}:{target_file}".encode()).hexdigest()
    assert seeds_formula == expected
    assert cluster.admin("SELECT jr_step_content_hash(%s, %s, %s, %s)", args, dbname=migrated_db) == [(expected,)]
    pgtap = (REPO / "db" / "tests" / "03_record_step.sql").read_text()
    assert expected in pgtap, "the pgTAP suite checks this vector"


def test_every_function_and_view_file_is_in_the_pgtap_comment_and_search_path_checks():
    schema_test = (REPO / "db" / "tests" / "01_schema.sql").read_text()
    privileges_test = (REPO / "db" / "tests" / "02_functions_and_privileges.sql").read_text()
    for path in [*(REPO / "db" / "functions").glob("*.sql"), *(REPO / "db" / "views").glob("*.sql")]:
        assert f"'{path.stem}'" in schema_test, f"01_schema.sql checks that {path.stem} has comments"
        if path.parent.name == "functions":
            assert f"'{path.stem}'" in privileges_test, f"02 checks {path.stem}'s search_path"


def test_prune_reads_the_old_block_ranges_through_the_brin_index(cluster, migrated_db):
    cluster.admin("""
        INSERT INTO jr_step_attempts (event_id, task_id, step_number, attempt_number, step_type, execution_result,
                                      recorded_at, received_at)
        SELECT gen_random_uuid(), g / 10, g % 10, 1, 'bash', 'success', now(),
               now() - interval '200 days' + g * interval '1 minute'
        FROM generate_series(1, 200000) g""", dbname=migrated_db)
    cluster.admin("ANALYZE jr_step_attempts", dbname=migrated_db)
    plans = nested_plans(cluster, migrated_db, "SELECT prune_step_attempts(interval '190 days', 1000)")
    assert "Bitmap Index Scan on idx_step_attempts_received_at" in plans, plans
    assert "Seq Scan on jr_step_attempts" not in plans, plans
    assert "Tid Scan on jr_step_attempts" in plans, plans
