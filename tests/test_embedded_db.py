"""The embedded database (scripts/pgcluster, make db / db-stop) and how the Makefile picks its target:
socket only, never run as root, survives stop and start, fits the socket path limit, and is never
started when PGHOST or PGSERVICE names a server."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from pgcluster import Cluster, run_make


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


def make(*args, **env):
    return run_make(*args, timeout=60, **env)


@pytest.mark.parametrize("target", ["migrate", "pgtap", "test", "lint"])
def test_with_pghost_set_no_target_starts_the_embedded_database(target):
    dry = make("-n", target, PGHOST="bluefin.example", PGUSER="claude", PGDATABASE="zammad_production")
    assert dry.returncode == 0, dry.stderr
    assert "pgcluster start" not in dry.stdout


def test_with_pgservice_set_no_target_starts_the_embedded_database():
    dry = make("-n", "migrate", PGSERVICE="ledger")
    assert dry.returncode == 0, dry.stderr
    assert "pgcluster start" not in dry.stdout


def test_without_pghost_the_targets_start_the_embedded_database():
    dry = make("-n", "migrate")
    assert "pgcluster start" in dry.stdout


def test_make_where_names_the_target():
    assert "server from the libpq variables host=bluefin.example" in make("where", PGHOST="bluefin.example").stdout
    assert "embedded (.pg/)" in make("where").stdout
