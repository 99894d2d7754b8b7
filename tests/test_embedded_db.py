"""The embedded database (scripts/pgcluster, make db / db-stop) and which database each make target
uses: socket only, never run as root, survives stop and start, fits the socket path limit; test,
demo and lint always use it; where, migrate and pgtap use the server the libpq variables name,
say which first, and leave nothing of pgTAP behind."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import free_port
from pgcluster import REPO, Cluster, run_make


@pytest.fixture
def own_cluster():
    c = Cluster()
    yield c
    c.destroy()


def server_uid(cluster):
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return os.stat(f"/proc/{pid}").st_uid


def test_it_listens_on_a_socket_only_and_keeps_its_data_across_stop_and_start(own_cluster):
    c = own_cluster.start()
    assert c.admin("SHOW listen_addresses") == [("",)]
    c.admin("CREATE TABLE kept (x int)")
    c.admin("INSERT INTO kept VALUES (42)")
    c.stop()
    c.stop()  # stopping a stopped cluster is fine
    c.start()
    c.start()  # so is starting a started one
    assert c.admin("SELECT x FROM kept") == [(42,)]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs another user for the server")
def test_started_by_root_the_server_runs_as_an_unprivileged_user(own_cluster):
    c = own_cluster.start()
    assert server_uid(c) != 0


def test_a_deep_folder_gets_a_short_socket_path(tmp_path):
    deep = Path(tempfile.mkdtemp(prefix="jr-deep-")) / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    os.chmod(deep.parent.parent, 0o755)
    c = Cluster(root=deep)
    try:
        c.start()
        assert len(c.host) + len("/.s.PGSQL.5432") <= 107, c.host
        assert c.admin("SELECT 1") == [(1,)]
    finally:
        c.destroy()
        shutil.rmtree(deep.parent.parent, ignore_errors=True)
    assert not Path(c.host).exists(), "make db-stop removes the short socket folder it made"


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback is for root with a checkout the server cannot reach")
def test_a_checkout_the_server_cannot_reach_keeps_its_cluster_under_var_tmp():
    closed = Path(tempfile.mkdtemp(prefix="jr-closed-"))  # 0700, root's: postgres cannot enter
    c = Cluster(root=closed / ".pg")
    try:
        c.start()
        assert str(c.data.parent).startswith("/var/tmp/jr-steps-")
        assert c.admin("SELECT 1") == [(1,)]
        assert server_uid(c) != 0
    finally:
        c.destroy()
        shutil.rmtree(closed, ignore_errors=True)
        if c.data:
            shutil.rmtree(c.data.parent, ignore_errors=True)


def make(*args, timeout=120, **env):
    return run_make(*args, timeout=timeout, **env)


def dead_server():
    """libpq variables that name a server nobody answers on: a target that used them would fail."""
    return {"PGHOST": "127.0.0.1", "PGPORT": str(free_port()), "PGUSER": "claude", "PGDATABASE": "zammad_production",
            "PGPASSWORD": "never-printed-3141"}


@pytest.mark.parametrize("target", ["lint", "demo"])
def test_demo_and_lint_use_the_embedded_database_whatever_pghost_says(target):
    result = make(target, **dead_server())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "never-printed-3141" not in result.stdout + result.stderr


def test_on_database_embedded_drops_every_libpq_variable():
    result = subprocess.run([str(REPO / "scripts" / "on-database"), "embedded", "env"], capture_output=True, text=True,
                            env={**os.environ, **dead_server(), "PGSERVICE": "ledger", "PGSSLMODE": "require"})
    assert result.returncode == 0, result.stderr
    env = dict(line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("PG"))
    assert env["PGHOST"] != "127.0.0.1" and env["PGDATABASE"] == "jr_steps" and env["PGUSER"] == "postgres"
    assert not {"PGSERVICE", "PGSSLMODE", "PGPASSWORD"} & env.keys()
    assert result.stdout.startswith("where: embedded database .pg/: host=")


def test_make_test_runs_pgtap_and_pytest_on_the_embedded_database_only():
    # Running make test from inside make test would recurse; its recipe is what proves it.
    recipe = make("-n", "test", **dead_server()).stdout
    assert "scripts/on-database embedded scripts/pgtap.sh" in recipe
    assert "scripts/on-database hermetic .venv/bin/pytest" in recipe
    assert "on-database target" not in recipe


@pytest.fixture
def server(cluster):
    """A server named by the libpq variables: a database owned by a login that is not a superuser,
    over TCP with a password."""
    login = "remote_" + os.urandom(4).hex()
    for role in ("jr_executor", "jr_rewarder", "jr_reader"):  # as a DBA would: the owner may not create roles
        if not cluster.admin("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)):
            cluster.admin(f"CREATE ROLE {role} NOLOGIN")
    cluster.admin(f"CREATE ROLE {login} LOGIN PASSWORD 'pw-{login}'")
    db = cluster.create_database(owner=login)
    yield {"PGHOST": "127.0.0.1", "PGPORT": str(cluster.port), "PGUSER": login, "PGDATABASE": db,
           "PGPASSWORD": f"pw-{login}"}
    cluster.admin(f"DROP DATABASE {db} WITH (FORCE)")
    cluster.admin(f"DROP ROLE {login}")


def test_make_where_connects_and_says_where_it_acts(server):
    result = make("where", **server)
    assert result.returncode == 0, result.stderr
    version = re.search(r"PostgreSQL (\d+)", result.stdout).group(1)
    assert (f"where: host=127.0.0.1 port={server['PGPORT']} dbname={server['PGDATABASE']} user={server['PGUSER']}: "
            f"PostgreSQL {version}") in result.stdout
    assert "not a superuser" in result.stdout
    assert "embedded" not in result.stdout


def test_make_where_says_when_it_cannot_connect():
    result = make("where", **dead_server())
    assert result.returncode != 0
    assert "cannot connect" in result.stderr and "Connection refused" in result.stderr
    assert "never-printed-3141" not in result.stdout + result.stderr


def test_make_migrate_and_pgtap_act_on_the_named_server_and_leave_no_pgtap_behind(cluster, server):
    migrate = make("migrate", **server)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    first = migrate.stdout.splitlines()[0]
    assert first.startswith(f"where: host=127.0.0.1 port={server['PGPORT']} dbname={server['PGDATABASE']}"), first
    assert cluster.admin("SELECT count(*) FROM jr_schema_migrations", dbname=server["PGDATABASE"])[0][0] > 0

    pgtap = make("pgtap", **server, timeout=300)
    assert pgtap.returncode == 0, pgtap.stdout + pgtap.stderr
    assert pgtap.stdout.splitlines()[0].startswith("where: host=127.0.0.1")
    assert "Result: PASS" in pgtap.stdout
    assert f"GRANT jr_executor, jr_reader, jr_rewarder TO {server['PGUSER']}" in pgtap.stdout
    left = cluster.admin("SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'pgtap'),"
                         " (SELECT count(*) FROM pg_namespace WHERE nspname = 'jr_pgtap')", dbname=server["PGDATABASE"])
    assert left == [(0, 0)]


def test_make_pgtap_loads_pgtap_from_its_script_when_it_must(cluster, server):
    assert make("migrate", **server).returncode == 0
    pgtap = make("pgtap", **server, JR_PGTAP_LOAD="script", timeout=300)
    assert pgtap.returncode == 0, pgtap.stdout + pgtap.stderr
    assert "pgTAP from its SQL script" in pgtap.stdout and "Result: PASS" in pgtap.stdout


def test_make_pgtap_says_what_a_dba_must_do_when_pgtap_cannot_be_loaded(cluster, server):
    assert make("migrate", **server).returncode == 0
    db, login = server["PGDATABASE"], server["PGUSER"]
    cluster.admin(f"REVOKE CREATE ON DATABASE {db} FROM {login}, PUBLIC")
    cluster.admin(f"ALTER DATABASE {db} OWNER TO postgres")
    result = make("pgtap", **server, JR_PGTAP_LOAD="script")
    assert result.returncode != 0
    assert f"GRANT CREATE ON DATABASE {db} TO {login}" in result.stderr
    assert "Dubious" not in result.stdout + result.stderr


def test_make_pgtap_stops_at_once_when_the_roles_it_tests_do_not_exist(bare_cluster):
    c = bare_cluster
    c.admin("CREATE ROLE lone_owner LOGIN")
    db = c.create_database(owner="lone_owner")
    assert c.migrate(db, user="lone_owner").returncode == 0  # it may not create the roles
    result = make("pgtap", **{k: v for k, v in c.env(db, "lone_owner").items() if k.startswith("PG")})
    assert result.returncode != 0
    assert "pgtap: roles the suite tests do not exist: jr_executor, jr_rewarder, jr_reader." in result.stderr
    assert "CREATE ROLE jr_executor NOLOGIN; CREATE ROLE jr_rewarder NOLOGIN; CREATE ROLE jr_reader NOLOGIN;" \
        in result.stderr
    assert "Dubious" not in result.stdout + result.stderr and "db/tests/" not in result.stdout
