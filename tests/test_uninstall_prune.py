"""make uninstall and make prune against a real server named by the libpq variables: uninstall
refuses without CONFIRM=yes, leaves the database as it was before make migrate, keeps roles that
are still in use; prune deletes old history in batches and nothing else."""

import re

from pgcluster import run_make


def make(cluster, db, *args, user="postgres"):
    return run_make(*args, **{k: v for k, v in cluster.env(db, user).items() if k.startswith("PG")})


def roles(cluster):
    return cluster.admin("SELECT rolname::text FROM pg_roles"
                         " WHERE rolname IN ('jr_executor', 'jr_rewarder', 'jr_reader', 'jr_owner') ORDER BY 1")


def test_uninstall_refuses_without_confirm_and_changes_nothing(cluster, migrated_db):
    before = cluster.dump(migrated_db, "--schema-only")
    for args in (["uninstall"], ["uninstall", "CONFIRM=no"]):
        result = make(cluster, migrated_db, *args)
        assert result.returncode == 2
        assert f"make uninstall drops the step ledger from {migrated_db}" in result.stderr
        assert "WITH ALL THEIR ROWS" in result.stderr
        assert "Nothing was done. To go ahead: make uninstall CONFIRM=yes" in result.stderr
    assert cluster.dump(migrated_db, "--schema-only") == before


def test_migrate_then_uninstall_leaves_the_database_as_it_was(bare_cluster):
    c = bare_cluster
    db = c.create_database()
    c.admin("CREATE TABLE someone_elses (id int)", dbname=db)
    before = c.dump(db, "--schema-only")

    assert make(c, db, "migrate").returncode == 0
    c.admin("SELECT record_step(1, 1, 'bash', NULL, 'success', 1), record_exploration('a', 'b')", dbname=db)
    result = make(c, db, "uninstall", "CONFIRM=yes")
    assert result.returncode == 0, result.stderr
    for role in ("jr_executor", "jr_rewarder", "jr_reader", "jr_owner"):
        assert f"dropped role {role}" in result.stderr
    assert f"uninstall: the step ledger is gone from {db}" in result.stdout

    assert c.dump(db, "--schema-only") == before
    assert roles(c) == []
    assert make(c, db, "migrate").returncode == 0, "and it installs again"


def test_uninstall_keeps_roles_something_else_still_uses(bare_cluster):
    c = bare_cluster
    db, other_db = c.create_database(), c.create_database()
    assert make(c, db, "migrate").returncode == 0
    c.admin("CREATE ROLE executor_login LOGIN IN ROLE jr_executor")
    c.admin("CREATE TABLE reports (id int); GRANT SELECT ON reports TO jr_reader", dbname=other_db)

    result = make(c, db, "uninstall", "CONFIRM=yes")
    assert result.returncode == 0, result.stderr
    assert "kept role jr_executor: it is granted to executor_login" in result.stderr
    assert "kept role jr_reader: it still holds 1 privilege(s) or object(s) in this cluster" in result.stderr
    assert "dropped role jr_rewarder" in result.stderr
    assert roles(c) == [("jr_executor",), ("jr_reader",)]
    assert c.admin("SELECT to_regclass('public.jr_step_rewards')", dbname=db) == [(None,)]


def test_uninstall_never_drops_what_a_dba_built_on_the_ledger(cluster, migrated_db):
    cluster.admin("CREATE VIEW my_report AS SELECT task_id FROM jr_step_rewards", dbname=migrated_db)
    before = cluster.dump(migrated_db, "--schema-only")
    result = make(cluster, migrated_db, "uninstall", "CONFIRM=yes")
    assert result.returncode != 0
    assert "depends on" in result.stderr
    assert cluster.dump(migrated_db, "--schema-only") == before, "one transaction: nothing was dropped"


def test_prune_deletes_old_history_in_batches_and_keeps_the_current_state(cluster, migrated_db):
    for step in range(1, 6):
        cluster.admin("SELECT record_step(3, %s, 'bash', NULL, 'pending', NULL),"
                      " record_step(3, %s, 'bash', NULL, 'success', 1)", (step, step), dbname=migrated_db)
    cluster.admin("UPDATE jr_step_attempts SET received_at = now() - interval '100 days' WHERE step_number <= 4",
                  dbname=migrated_db)
    state = cluster.admin("SELECT * FROM jr_step_rewards ORDER BY step_number", dbname=migrated_db)
    cluster.admin("SELECT pg_stat_reset()", dbname=migrated_db)

    result = make(cluster, migrated_db, "prune", "OLDER_THAN=90 days", "BATCH=3")
    assert result.returncode == 0, result.stderr
    assert "prune: deleted 8 history rows stored more than 90 days ago" in result.stdout
    assert cluster.admin("SELECT step_number FROM jr_step_attempts ORDER BY id", dbname=migrated_db) == [(5,), (5,)]
    assert cluster.admin("SELECT * FROM jr_step_rewards ORDER BY step_number", dbname=migrated_db) == state
    calls = cluster.admin("SELECT calls FROM pg_stat_user_functions WHERE funcname = 'prune_step_attempts'",
                          dbname=migrated_db)
    assert calls in ([], [(3,)]), "8 rows in batches of 3: three calls (counted when track_functions is on)"


def test_prune_needs_an_age_and_quotes_it(cluster, migrated_db):
    missing = make(cluster, migrated_db, "prune")
    assert missing.returncode != 0 and "set OLDER_THAN" in missing.stderr
    hostile = make(cluster, migrated_db, "prune", "OLDER_THAN=1 day'; DROP TABLE jr_step_rewards; --")
    assert hostile.returncode != 0
    assert re.search(r"invalid input syntax for type interval", hostile.stderr)
    assert cluster.admin("SELECT to_regclass('public.jr_step_rewards') IS NOT NULL", dbname=migrated_db) == [(True,)]
