"""make migrate's promises, which SQL alone cannot see: idempotence, upgrading a seed-built
database, concurrent runs, refusing changed history, lock_timeout, and missing roles."""

import importlib.util
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from pgcluster import MIGRATE, REPO

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MIGRATIONS = sorted(p.name for p in (REPO / "db" / "migrations").glob("*.sql"))
DEFINITIONS = [p.stem for folder in ("functions", "views") for p in sorted((REPO / "db" / folder).glob("*.sql"))]

# The seed's own _record_step_result statement, as the old executor ran it (psycopg2 placeholders).
SEED_UPSERT = (FIXTURES / "seed_upsert.sql").read_text()


def migrate_module():
    """db/migrate.py as a module, for the constants a test must share with it."""
    spec = importlib.util.spec_from_file_location("jr_migrate", MIGRATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ledger(cluster, db):
    return cluster.admin("SELECT version, name, checksum, applied_at FROM jr_schema_migrations ORDER BY version",
                         dbname=db)


def schema(cluster, db):
    return cluster.dump(db, "--schema-only")


def test_first_migrate_applies_every_migration_in_order(cluster, fresh_db):
    result = cluster.migrate(fresh_db)
    assert result.returncode == 0, result.stderr
    applied = re.findall(r"^applied (\S+)", result.stdout, re.M)
    assert applied == MIGRATIONS
    assert "functions and views: applied " + ", ".join(DEFINITIONS) in result.stdout
    assert [row[1] for row in ledger(cluster, fresh_db)] == MIGRATIONS


def test_the_objects_migrate_looks_for_in_place_are_all_it_creates(cluster, migrated_db):
    """What migrate checks before it changes anything is every relation and function it creates."""
    module = migrate_module()
    relations = dict(cluster.admin(
        "SELECT relname::text, relkind::text FROM pg_class WHERE relnamespace = 'public'::regnamespace",
        dbname=migrated_db))
    functions = {name for (name,) in cluster.admin(
        "SELECT proname::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace", dbname=migrated_db)}
    assert relations == module.LEDGER_RELATIONS
    assert functions == set(module.LEDGER_FUNCTIONS)


def test_migrate_three_times_changes_nothing(cluster, migrated_db):
    before = (schema(cluster, migrated_db), ledger(cluster, migrated_db))
    for _ in range(2):
        result = cluster.migrate(migrated_db)
        assert result.returncode == 0, result.stderr
        assert f"migrations: all {len(MIGRATIONS)} already applied" in result.stdout
        assert "applied 0" not in result.stdout
        assert f"functions and views: all {len(DEFINITIONS)} unchanged" in result.stdout
    assert (schema(cluster, migrated_db), ledger(cluster, migrated_db)) == before


def seed_database(cluster, db, user="postgres"):
    """A database where the seed's SQL ran by hand (as user) and the old executor wrote rows."""
    cluster.psql_file(db, FIXTURES / "seed_schema.sql", user=user)
    conn = cluster.connect(db, user=user)
    with conn, conn.cursor() as cur:
        cur.execute(SEED_UPSERT, (41, 1, "search_replace", "/ganuda/a.py", "h1", "success", 120, None))
        cur.execute(SEED_UPSERT, (41, 2, "bash", None, "h2", "failed", 3000, "exit 1"))
        cur.execute("INSERT INTO jr_step_rewards (task_id, step_number, step_type) VALUES (41, 3, 'bash')")
        cur.execute("INSERT INTO jr_exploration_log (jr_type, task_type) VALUES ('se', 'refactor')")
    conn.close()


def test_upgrade_in_place_keeps_seed_rows_and_records_the_baseline(cluster, fresh_db):
    seed_database(cluster, fresh_db)
    rows_before = cluster.admin(
        "SELECT id, task_id, step_number, execution_result, created_at FROM jr_step_rewards ORDER BY id",
        dbname=fresh_db)

    result = cluster.migrate(fresh_db)
    assert result.returncode == 0, result.stderr
    # The superuser made the seed's tables: make migrate hands them to jr_owner first (after
    # creating jr_owner, when no earlier test in this cluster did).
    assert re.match(r"(created role jr_owner .*\n)?"
                    r"handed to jr_owner, which owns the ledger: table public.jr_exploration_log \(from postgres\),"
                    r" table public.jr_step_rewards \(from postgres\)\n"
                    r"0001_seed_schema.sql: the seed's tables were already here; recorded as the baseline\n",
                    result.stdout), result.stdout
    assert re.findall(r"^applied (\S+)", result.stdout, re.M) == MIGRATIONS[1:]
    assert "already exists" not in result.stdout, "the baseline's IF NOT EXISTS notices are not news"
    assert ledger(cluster, fresh_db)[0][1] == "0001_seed_schema.sql"

    assert cluster.admin(
        "SELECT id, task_id, step_number, execution_result, created_at FROM jr_step_rewards ORDER BY id",
        dbname=fresh_db) == rows_before
    assert cluster.admin("SELECT step_number, attempts, failed_attempts FROM jr_step_rewards ORDER BY step_number",
                         dbname=fresh_db) == [(1, 1, 0), (2, 1, 1), (3, 0, 0)]
    assert cluster.admin("SELECT count(*) FROM jr_exploration_log", dbname=fresh_db) == [(1,)]

    # The upgraded rows take part in the ledger like any other.
    assert cluster.admin("SELECT step_succeeded(41, 1), step_succeeded(41, 2)", dbname=fresh_db) == [(True, False)]
    assert cluster.admin("SELECT record_step(41, 2, 'bash', NULL, 'success', 90)", dbname=fresh_db) == [("recorded",)]
    assert cluster.admin("SELECT execution_result, attempts, failed_attempts FROM jr_step_rewards"
                         " WHERE step_number = 2", dbname=fresh_db) == [("success", 2, 1)]


def test_a_seed_made_database_with_an_empty_ledger_is_a_baseline_too_and_gets_what_it_lacks(cluster, fresh_db):
    seed_database(cluster, fresh_db)
    cluster.admin(migrate_module().LEDGER_DDL, dbname=fresh_db)  # an earlier run that got no further
    cluster.admin("DROP INDEX idx_step_rewards_type", dbname=fresh_db)

    result = cluster.migrate(fresh_db)
    assert result.returncode == 0, result.stderr
    assert ("\n0001_seed_schema.sql: the seed's tables were already here; recorded as the baseline"
            " (it created what was missing: idx_step_rewards_type)\n") in result.stdout, result.stdout
    assert cluster.admin("SELECT to_regclass('idx_step_rewards_type') IS NOT NULL", dbname=fresh_db) == [(True,)]


def test_a_fresh_database_is_no_baseline(cluster, fresh_db):
    result = cluster.migrate(fresh_db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("applied 0001_seed_schema.sql\n")
    assert "baseline" not in result.stdout


def test_upgrade_gives_the_same_schema_as_a_fresh_install(cluster, fresh_db, migrated_db):
    seed_database(cluster, fresh_db)
    assert cluster.migrate(fresh_db).returncode == 0
    assert schema(cluster, fresh_db) == schema(cluster, migrated_db)


# (table, constraint) that seed_database_with_bad_rows leaves NOT VALID, in the order migrate names them.
NOT_VALID_AFTER_BAD_ROWS = [("jr_exploration_log", "jr_exploration_log_task_outcome_known"),
                            ("jr_step_rewards", "jr_step_rewards_result_known"),
                            ("jr_step_rewards", "jr_step_rewards_verified_outcome_known")]


def seed_database_with_bad_rows(cluster, db):
    """A seed-made database with rows that break three of the CHECKs migrations 0003 and 0004 add."""
    seed_database(cluster, db)
    cluster.admin("UPDATE jr_step_rewards SET execution_result = 'error' WHERE step_number = 2", dbname=db)
    cluster.admin("UPDATE jr_step_rewards SET verified_outcome = 'yes' WHERE step_number = 1", dbname=db)
    cluster.admin("UPDATE jr_exploration_log SET task_outcome = 'ok'", dbname=db)


def test_upgrade_keeps_rows_that_break_a_new_check_and_says_how_to_finish(cluster, fresh_db):
    seed_database_with_bad_rows(cluster, fresh_db)

    result = cluster.migrate(fresh_db)
    assert result.returncode == 0, result.stderr
    assert "1 existing row(s) of jr_step_rewards break jr_step_rewards_result_known" in result.stdout
    assert "VALIDATE CONSTRAINT jr_step_rewards_result_known" in result.stdout
    assert "1 existing row(s) of jr_step_rewards break jr_step_rewards_verified_outcome_known" in result.stdout
    assert "1 existing row(s) of jr_exploration_log break jr_exploration_log_task_outcome_known" in result.stdout
    for _, name in NOT_VALID_AFTER_BAD_ROWS:
        assert len([line for line in result.stdout.splitlines() if name in line]) == 1, \
            f"{name} is reported once per run, not by 0003 and again by 0004: {result.stdout}"
    assert cluster.admin("SELECT execution_result FROM jr_step_rewards WHERE step_number = 2",
                         dbname=fresh_db) == [("error",)]
    validated = dict(cluster.admin(
        "SELECT conname::text, convalidated FROM pg_constraint WHERE conrelid = 'jr_step_rewards'::regclass"
        " AND contype = 'c'", dbname=fresh_db))
    assert validated == {"jr_step_rewards_attempts_nonnegative": True, "jr_step_rewards_result_known": False,
                         "jr_step_rewards_step_number_nonnegative": True, "jr_step_rewards_time_nonnegative": True,
                         "jr_step_rewards_failed_attempts_valid": True, "jr_step_rewards_implicit_reward_finite": True,
                         "jr_step_rewards_verified_outcome_known": False, "jr_step_rewards_retry_decision_known": True}
    # Not validated, but enforced for every new write.
    with pytest.raises(Exception, match="jr_step_rewards_result_known"):
        cluster.admin("UPDATE jr_step_rewards SET execution_result = 'done' WHERE step_number = 1", dbname=fresh_db)


def test_every_later_migrate_names_the_checks_still_not_valid(cluster, fresh_db):
    seed_database_with_bad_rows(cluster, fresh_db)
    first = cluster.migrate(fresh_db)
    assert first.returncode == 0, first.stderr
    assert "still NOT VALID" not in first.stdout, "the run that added them has said so already"

    for _ in range(2):
        result = cluster.migrate(fresh_db)
        assert result.returncode == 0, result.stderr
        reminders = [line for line in result.stdout.splitlines() if line.startswith("still NOT VALID: ")]
        assert reminders == [
            f"still NOT VALID: {name} on {table} (new writes are checked, existing rows are not); once no row"
            f" breaks it, run: ALTER TABLE public.{table} VALIDATE CONSTRAINT {name};"
            for table, name in NOT_VALID_AFTER_BAD_ROWS]

    # Fixed and validated: the reminder goes.
    cluster.admin("UPDATE jr_step_rewards SET execution_result = 'failed' WHERE execution_result = 'error';"
                  " ALTER TABLE jr_step_rewards VALIDATE CONSTRAINT jr_step_rewards_result_known", dbname=fresh_db)
    result = cluster.migrate(fresh_db)
    assert result.returncode == 0, result.stderr
    assert "jr_step_rewards_result_known" not in result.stdout
    assert "still NOT VALID: jr_step_rewards_verified_outcome_known" in result.stdout


def test_concurrent_migrations_take_turns(cluster, fresh_db):
    results = []

    def run():
        results.append(cluster.migrate(fresh_db))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]
    applied = [name for r in results for name in re.findall(r"^applied (\S+)", r.stdout, re.M)]
    assert sorted(applied) == MIGRATIONS, "each migration is applied by exactly one run"
    assert [row[1] for row in ledger(cluster, fresh_db)] == MIGRATIONS


def copy_of_db_dir(tmp_path):
    copy = tmp_path / "db"
    shutil.copytree(REPO / "db", copy)
    return copy


def test_a_changed_applied_migration_is_refused(cluster, migrated_db, tmp_path):
    db_dir = copy_of_db_dir(tmp_path)
    changed = db_dir / "migrations" / "0002_step_attempts.sql"
    changed.write_text(changed.read_text() + "\n-- an afterthought\n")
    before = schema(cluster, migrated_db)

    result = cluster.migrate(migrated_db, db_dir=db_dir)
    assert result.returncode == 1
    assert "0002_step_attempts.sql was changed after it was applied" in result.stderr
    assert schema(cluster, migrated_db) == before


def test_a_database_ahead_of_the_checkout_is_refused(cluster, migrated_db):
    cluster.admin("INSERT INTO jr_schema_migrations (version, name, checksum) VALUES (9999, '9999_future.sql', 'x')",
                  dbname=migrated_db)
    result = cluster.migrate(migrated_db)
    assert result.returncode == 1
    assert "the database has migration 9999_future.sql, which this checkout does not have" in result.stderr


def test_a_function_changed_in_the_database_is_applied_again_and_said(cluster, migrated_db):
    """Whoever can act as the owner may replace a function's body; the next run puts the file's
    back, and says so, even though the file did not change."""
    cluster.admin("""GRANT CREATE ON SCHEMA public TO jr_owner; SET ROLE jr_owner;
        CREATE OR REPLACE FUNCTION public.step_succeeded(task_id integer, step_number integer,
            step_content_hash text DEFAULT NULL) RETURNS boolean LANGUAGE sql AS 'SELECT true';
        RESET ROLE; REVOKE CREATE ON SCHEMA public FROM jr_owner""", dbname=migrated_db)
    assert cluster.admin("SELECT step_succeeded(404, 1)", dbname=migrated_db) == [(True,)]
    result = cluster.migrate(migrated_db)
    assert result.returncode == 0, result.stderr
    assert ("warning: function public.step_succeeded was changed in the database since make migrate applied it"
            " (by whoever can act as jr_owner); applied again from db/functions/step_succeeded.sql") in result.stdout
    assert "functions and views: applied step_succeeded\n" in result.stdout
    assert cluster.admin("SELECT step_succeeded(404, 1)", dbname=migrated_db) == [(False,)]
    assert f"functions and views: all {len(DEFINITIONS)} unchanged" in cluster.migrate(migrated_db).stdout


def test_an_extra_overload_of_a_ledger_function_is_refused(cluster, migrated_db):
    """Whoever acts as the owner could add one; it would make every call ambiguous, or take some."""
    cluster.admin("""GRANT CREATE ON SCHEMA public TO jr_owner; SET ROLE jr_owner;
        CREATE FUNCTION public.step_succeeded(task_id integer, step_number integer, step_content_hash text,
            spare integer DEFAULT 0) RETURNS boolean LANGUAGE sql AS 'SELECT true';
        RESET ROLE; REVOKE CREATE ON SCHEMA public FROM jr_owner""", dbname=migrated_db)
    result = cluster.migrate(migrated_db)
    assert result.returncode == 1, result.stdout
    assert ("function public.step_succeeded(integer,integer,text,integer) is one of several functions of that"
            " name in schema public, where the ledger has one") in result.stderr


def test_a_new_migration_is_applied_alone(cluster, migrated_db, tmp_path):
    db_dir = copy_of_db_dir(tmp_path)
    (db_dir / "migrations" / "0999_extra_note.sql").write_text(
        "COMMENT ON TABLE public.jr_exploration_log IS 'changed by a later migration';\n"
        "ALTER VIEW public.jr_task_progress SET (security_barrier = true);")
    result = cluster.migrate(migrated_db, db_dir=db_dir)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^applied (\S+)", result.stdout, re.M) == ["0999_extra_note.sql"]
    # A migration may have changed what a function or view relies on: all of them are applied
    # again, and a view the migration itself changed is no news.
    assert "functions and views: applied " + ", ".join(DEFINITIONS) + "\n" in result.stdout
    assert "warning" not in result.stdout


def test_a_no_op_migrate_takes_no_lock_on_a_view_in_use(cluster, migrated_db):
    """CREATE OR REPLACE VIEW needs ACCESS EXCLUSIVE: a run that re-created every view waited for
    any open transaction that had read one, and failed after lock_timeout."""
    reader = cluster.connect(migrated_db)
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM jr_task_progress")  # the transaction stays open
            result = cluster.migrate(migrated_db, JR_LOCK_TIMEOUT="1s")
    finally:
        reader.close()
    assert result.returncode == 0, result.stderr
    assert f"functions and views: all {len(DEFINITIONS)} unchanged" in result.stdout


def test_migrate_applies_again_only_the_definitions_that_changed_or_went_missing(cluster, migrated_db, tmp_path):
    db_dir = copy_of_db_dir(tmp_path)
    changed = db_dir / "functions" / "jr_elide_middle.sql"
    changed.write_text(changed.read_text() + "\n-- an afterthought\n")
    cluster.admin("DROP VIEW jr_failure_hot_spots", dbname=migrated_db)
    result = cluster.migrate(migrated_db, db_dir=db_dir)
    assert result.returncode == 0, result.stderr
    assert "functions and views: applied jr_elide_middle, jr_failure_hot_spots\n" in result.stdout
    assert cluster.admin("SELECT to_regclass('public.jr_failure_hot_spots') IS NOT NULL",
                         dbname=migrated_db) == [(True,)]
    assert cluster.migrate(migrated_db, db_dir=db_dir).stdout.count("unchanged") == 1


def test_a_failing_migration_rolls_back_whole_and_says_which(cluster, migrated_db, tmp_path):
    db_dir = copy_of_db_dir(tmp_path)
    (db_dir / "migrations" / "0999_broken.sql").write_text(
        "CREATE TABLE public.jr_half_done (id int);\nSELECT no_such_function();")
    result = cluster.migrate(migrated_db, db_dir=db_dir)
    assert result.returncode == 1
    assert "0999_broken.sql failed and was rolled back" in result.stderr
    assert cluster.admin("SELECT to_regclass('public.jr_half_done')", dbname=migrated_db) == [(None,)]
    assert len(ledger(cluster, migrated_db)) == len(MIGRATIONS)


def test_a_misnamed_migration_file_is_refused(cluster, migrated_db, tmp_path):
    db_dir = copy_of_db_dir(tmp_path)
    (db_dir / "migrations" / "4_oops.sql").write_text("SELECT 1;")
    result = cluster.migrate(migrated_db, db_dir=db_dir)
    assert result.returncode == 1
    assert "4_oops.sql: not a migration name" in result.stderr


def test_lock_timeout_fails_clearly_instead_of_queueing(cluster):
    # The seed's tables are the login's own (a superuser's run would first hand them to jr_owner,
    # which waits on the busy table before anything is applied).
    cluster.admin("DO $$ BEGIN CREATE ROLE jr_app_owner LOGIN; EXCEPTION WHEN duplicate_object THEN END $$")
    fresh_db = cluster.create_database(owner="jr_app_owner")
    seed_database(cluster, fresh_db, user="jr_app_owner")
    blocker = cluster.connect(fresh_db)
    try:
        with blocker.cursor() as cur:  # a long transaction that has read the table
            cur.execute("SELECT count(*) FROM jr_step_rewards")
        started = time.monotonic()
        result = cluster.migrate(fresh_db, user="jr_app_owner", JR_LOCK_TIMEOUT="1s")
        elapsed = time.monotonic() - started
    finally:
        blocker.rollback()
        blocker.close()
    try:
        assert result.returncode == 1
        assert "lock timeout" in result.stderr and "JR_LOCK_TIMEOUT" in result.stderr
        assert elapsed < 60, "the run gave up instead of queueing (a loose bound: lock_timeout is 1 s)"
        # What was applied before the busy table stays applied; the blocked migration left nothing.
        assert [row[1] for row in ledger(cluster, fresh_db)] == MIGRATIONS[:2]
        assert cluster.migrate(fresh_db, user="jr_app_owner").returncode == 0
    finally:
        cluster.admin(f"DROP DATABASE {fresh_db} WITH (FORCE)")


def test_a_run_that_waits_longer_than_JR_MIGRATE_WAIT_for_another_gives_up_and_says_so(cluster, migrated_db):
    other_run = cluster.connect(migrated_db)
    try:
        with other_run.cursor() as cur:  # another make migrate, in the middle of a transaction
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (migrate_module().ADVISORY_LOCK_KEY,))
        started = time.monotonic()
        result = cluster.migrate(migrated_db, JR_MIGRATE_WAIT="1s")
        elapsed = time.monotonic() - started
    finally:
        other_run.rollback()
        other_run.close()
    assert result.returncode == 1
    assert "another make migrate has held the migration lock for longer than JR_MIGRATE_WAIT (1s)" in result.stderr
    assert elapsed < 60, "a bounded wait (a loose bound: JR_MIGRATE_WAIT is 1 s)"
    assert cluster.migrate(migrated_db).returncode == 0


def test_unreachable_database_is_a_clear_error(cluster, tmp_path):
    result = cluster.migrate("postgres", PGHOST=str(tmp_path), PGCONNECT_TIMEOUT="2")
    assert result.returncode == 1
    assert result.stderr.startswith("migrate: cannot connect:")


def test_without_createrole_migrate_succeeds_and_says_what_a_dba_must_run(bare_cluster):
    c = bare_cluster
    c.admin("CREATE ROLE migrator LOGIN NOCREATEROLE")
    db = c.create_database(owner="migrator")

    result = c.migrate(db, user="migrator")
    assert result.returncode == 0, result.stderr
    for role in ("jr_executor", "jr_rewarder", "jr_reader"):
        assert (f"role {role} does not exist and migrator may not create roles; "
                f"a DBA must run: CREATE ROLE {role} NOLOGIN") in result.stdout
    assert "granted" not in result.stdout
    assert c.admin("SELECT count(*) FROM pg_roles WHERE rolname IN ('jr_executor', 'jr_rewarder', 'jr_reader')") \
        == [(0,)]
    assert c.admin("SELECT record_step(1, 1, 'bash', NULL, 'success', 1)", dbname=db) == [("recorded",)]

    # Once a DBA has created the roles, the next migrate grants their privileges.
    c.admin("CREATE ROLE jr_executor NOLOGIN")
    c.admin("CREATE ROLE jr_rewarder NOLOGIN")
    c.admin("CREATE ROLE jr_reader NOLOGIN")
    result = c.migrate(db, user="migrator")
    assert result.returncode == 0, result.stderr
    assert "does not exist" not in result.stdout
    assert "granted jr_executor: EXECUTE on begin_step, record_step, step_succeeded" in result.stdout
    assert "granted jr_rewarder: EXECUTE on record_exploration, set_step_reward" in result.stdout
    assert ("granted jr_reader: SELECT on jr_exploration_log, jr_failure_hot_spots, jr_retry_effectiveness,"
            " jr_step_attempts, jr_step_definition_successes, jr_step_rewards, jr_step_type_stats, jr_task_progress"
            in result.stdout)
    assert c.admin(
        "SELECT has_function_privilege('jr_executor', 'record_step(integer, integer, text, text, text, integer, text,"
        " timestamptz, uuid, text, text)', 'EXECUTE'), has_table_privilege('jr_reader', 'jr_step_rewards', 'SELECT'),"
        " has_table_privilege('jr_executor', 'jr_step_rewards', 'SELECT')", dbname=db) == [(True, True, False)]

    # Granted once: the next run has nothing to say about it.
    result = c.migrate(db, user="migrator")
    assert result.returncode == 0, result.stderr
    assert "granted" not in result.stdout


def run_privileges_sql(cluster, db):
    """db/privileges.sql alone, as migrate runs it, in a transaction rolled back afterwards: what it
    said, the transaction id it took (None: it wrote nothing), and the relations it locked besides
    the system catalogs."""
    conn = cluster.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('search_path', 'pg_catalog, pg_temp', true)")
            cur.execute((REPO / "db" / "privileges.sql").read_text())
            cur.execute("SELECT pg_current_xact_id_if_assigned()::text")
            xid = cur.fetchone()[0]
            cur.execute("SELECT relation::regclass::text FROM pg_locks"
                        " WHERE pid = pg_backend_pid() AND relation >= 16384 ORDER BY 1")  # FirstNormalObjectId
            locked = [name for (name,) in cur.fetchall()]
        conn.rollback()
        return [notice.strip() for notice in conn.notices], xid, locked
    finally:
        conn.close()


def test_privileges_sql_executes_nothing_when_the_privileges_are_exact(cluster, migrated_db):
    assert run_privileges_sql(cluster, migrated_db) == ([], None, [])

    # The same measure sees a change when there is one to make.
    cluster.admin("GRANT DELETE ON jr_step_rewards TO jr_reader", dbname=migrated_db)
    said, xid, _ = run_privileges_sql(cluster, migrated_db)
    assert said == ["NOTICE:  revoked from jr_reader: DELETE on jr_step_rewards"]
    assert xid is not None


def test_an_install_where_jr_executor_may_write_rewards_loses_that_at_the_next_migrate(cluster, migrated_db):
    # What migrate granted before jr_rewarder existed.
    cluster.admin("GRANT EXECUTE ON FUNCTION set_step_reward(integer, integer, double precision, text, text),"
                  " record_exploration(text, text, double precision, double precision, text) TO jr_executor",
                  dbname=migrated_db)
    result = cluster.migrate(migrated_db)
    assert result.returncode == 0, result.stderr
    assert "notice: revoked from jr_executor: EXECUTE on record_exploration, set_step_reward" in result.stdout
    assert cluster.admin(
        "SELECT r.rolname::text, has_function_privilege(r.rolname, 'set_step_reward(integer, integer, double precision,"
        " text, text)', 'EXECUTE'), has_function_privilege(r.rolname, 'record_exploration(text, text, double precision,"
        " double precision, text)', 'EXECUTE') FROM pg_roles r WHERE r.rolname IN ('jr_executor', 'jr_rewarder')"
        " ORDER BY 1", dbname=migrated_db) == [("jr_executor", False, False), ("jr_rewarder", True, True)]


def test_failed_attempts_are_counted_from_the_history_on_upgrade(cluster, fresh_db, tmp_path):
    """A database at migration 0003 whose history holds failures gets failed_attempts from it."""
    before_0004 = copy_of_db_dir(tmp_path)
    (before_0004 / "migrations" / "0004_rewards_and_exploration.sql").unlink()
    for path in [*(before_0004 / "functions").glob("*.sql"), *(before_0004 / "views").glob("*.sql")]:
        path.unlink()
    (before_0004 / "privileges.sql").write_text("SELECT 1;")
    assert cluster.migrate(fresh_db, db_dir=before_0004).returncode == 0
    cluster.admin("""
        INSERT INTO jr_step_rewards (task_id, step_number, step_type, execution_result, attempts)
        VALUES (9, 1, 'bash', 'success', 3), (9, 2, 'bash', 'failed', 1), (9, 3, 'bash', 'success', 1),
               (9, 4, 'bash', 'failed', 1);
        INSERT INTO jr_step_attempts (event_id, task_id, step_number, attempt_number, step_type, execution_result,
                                      recorded_at)
        SELECT gen_random_uuid(), 9, s, n, 'bash', r, now()
        FROM (VALUES (1, 1, 'failed'), (1, 2, 'failed'), (1, 3, 'success'), (2, 1, 'pending'), (2, 1, 'failed'),
                     (3, 1, 'success')) AS e(s, n, r)""", dbname=fresh_db)

    result = cluster.migrate(fresh_db)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^applied (\S+)", result.stdout, re.M) == ["0004_rewards_and_exploration.sql"]
    assert cluster.admin("SELECT step_number, attempts, failed_attempts FROM jr_step_rewards ORDER BY 1",
                         dbname=fresh_db) == [(1, 3, 2), (2, 1, 1), (3, 1, 0), (4, 1, 1)], \
        "from the history; step 4 has none, so its own failed result counts"


def test_the_seed_upsert_fixture_is_the_seeds_own_statement():
    seed = (FIXTURES / "seed_instruction.md").read_text()
    assert " ".join(SEED_UPSERT.split()) in " ".join(seed.split())
