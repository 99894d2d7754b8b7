"""make migrate through a real PgBouncer in transaction pooling, as bluefin may run it: consecutive
transactions of one client may run on different server connections, so no lock or setting may
outlive its transaction. The login is no superuser and may not create databases or roles, as on
bluefin."""

import re
import threading
import uuid

import psycopg2
import pytest
from pgbouncer import PgBouncer
from test_migrate import MIGRATIONS

LOGIN, PASSWORD = "jr_bouncer_login", "pw-bouncer " + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def login(cluster):
    cluster.admin(f"CREATE ROLE {LOGIN} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    yield LOGIN
    cluster.admin(f"DROP ROLE {LOGIN}")


@pytest.fixture
def login_db(cluster, login):
    """An empty database the login owns (PostgreSQL 15 gives it the public schema too)."""
    name = cluster.create_database(owner=login)
    yield name
    cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")


def bouncer_in_front(cluster, **settings):
    return PgBouncer(cluster, {LOGIN: PASSWORD}, **settings).start()


def migrate_through(cluster, bouncer, db, **env):
    return cluster.migrate(db, PGHOST="127.0.0.1", PGPORT=str(bouncer.port), PGUSER=LOGIN, PGPASSWORD=PASSWORD,
                           **env)


def applied(result):
    return re.findall(r"^applied (\S+)", result.stdout, re.M)


def ledger(cluster, db):
    return [name for (name,) in cluster.admin("SELECT name FROM jr_schema_migrations ORDER BY version", dbname=db)]


def test_a_fresh_migrate_then_a_second_one_through_pgbouncer_leave_no_session_state(cluster, login_db):
    bouncer = bouncer_in_front(cluster)
    try:
        first = migrate_through(cluster, bouncer, login_db)
        assert first.returncode == 0, first.stderr
        assert applied(first) == MIGRATIONS
        second = migrate_through(cluster, bouncer, login_db)
        assert second.returncode == 0, second.stderr
        assert applied(second) == [] and f"migrations: all {len(MIGRATIONS)} already applied" in second.stdout

        # The server connections go back to the pool as migrate found them: the next client of the
        # pool gets the server's own lock_timeout, and no advisory lock is left held.
        default = cluster.admin("SHOW lock_timeout")
        conn = psycopg2.connect(**bouncer.config(LOGIN, login_db))
        try:
            for _ in range(3):
                with conn, conn.cursor() as cur:
                    cur.execute("SHOW lock_timeout")
                    assert cur.fetchall() == default
        finally:
            conn.close()
        assert cluster.admin("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    finally:
        bouncer.stop()
    assert ledger(cluster, login_db) == MIGRATIONS


# Round robin hands each transaction the server connection used least recently, so consecutive
# transactions of one client land on different ones: what a busy pool does now and then.
@pytest.mark.parametrize("settings", [{}, {"server_round_robin": 1}], ids=["default", "server_round_robin"])
def test_concurrent_migrates_through_pgbouncer_take_turns(cluster, login_db, settings):
    bouncer = bouncer_in_front(cluster, **settings)
    results = []
    try:
        threads = [threading.Thread(target=lambda: results.append(migrate_through(cluster, bouncer, login_db)))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
        assert sorted(name for r in results for name in applied(r)) == MIGRATIONS, \
            "each migration is applied by exactly one run"
        after = migrate_through(cluster, bouncer, login_db, JR_MIGRATE_WAIT="5s")
        assert after.returncode == 0, "no run left the migration lock behind: " + after.stderr
    finally:
        bouncer.stop()
    assert ledger(cluster, login_db) == MIGRATIONS
