"""make bench still runs: a smoke run of every section, tiny, against a throwaway database server.
It asserts that the table is complete and that the scratch databases, the peers' cluster and their
processes are gone; never a time. Of the peers' counts, it asserts the WAL flush count's check on a
known case, and what a step through the thin calls costs: two round trips, one durable commit.
The peers section installs .venv-peers on first use (about a minute); offline, it says so in one
line and the bench still succeeds.
Logins with fewer privileges, as on bluefin: without CREATEDB the bench stops at once and says what
it needs; with CREATEDB but no superuser it skips what needs one and runs the rest."""

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from pgcluster import REPO

QUICK = ["--samples", "40", "--big-rows", "2000", "--duration", "1", "--clients", "1,2", "--cap", "3",
         "--peer-rounds", "2"]
PEER_LABELS = ("this ledger: StepRecorder, executor hooks", "this ledger: thin db.* calls",
               "DBOS: @DBOS.step() in a @DBOS.workflow()", "LangGraph PostgresSaver, durability sync",
               "LangGraph PostgresSaver, async (default)")


def bench(env, out, *extra):
    return subprocess.run([sys.executable, str(REPO / "bench" / "bench.py"), *QUICK, *extra, "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)


def peer_leftovers():
    """The peers section's clusters (their folders) and worker processes that exist right now."""
    folders = set(Path(tempfile.gettempdir()).glob("jr-peers-*"))
    workers = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"peers_worker.py" in cmdline.read_bytes():
                workers.add(cmdline.parent.name)
        except OSError:
            pass  # ended meanwhile
    return folders | workers


@pytest.fixture
def login(cluster):
    """make_login(options): a login with those role options, reached over loopback TCP with a password
    as bluefin is; returns the bench's environment for it. The logins are dropped after the test."""
    made = []

    def make_login(options):
        name, password = f"jr_bench_login_{len(made)}", uuid.uuid4().hex
        cluster.admin(f"CREATE ROLE {name} LOGIN {options} PASSWORD '{password}'")
        made.append(name)
        return name, dict(cluster.env("postgres", name), PGHOST="127.0.0.1", PGPASSWORD=password)

    yield make_login
    for name in made:
        cluster.admin(f"DROP ROLE {name}")


def test_bench_runs_every_section_and_leaves_nothing_behind(cluster, tmp_path):
    out = tmp_path / "bench.txt"
    before = peer_leftovers()
    result = bench(cluster.env("postgres"), out)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = out.read_text()
    for heading in ("1. Recording one step", "1b. Recording one step, over loopback TCP", "2. Checking one step",
                    "3. Growth", "4. Concurrency", "5. Outage", "6. Peers"):
        assert heading in table
    assert "record_step (this project, one call)" in table and "seed: new connection + raw upsert" in table
    assert "plans inside step_succeeded: Index" in table
    assert "more than 3 s" in table, "the seed's approach hangs on a silent peer and is cut off"
    peers = table.split("6. Peers", 1)[1]
    if "skipped: the peers could not be installed" not in peers:  # offline, on a machine without them
        for label in PEER_LABELS:
            assert peers.count(label) >= 3, f"{label}: a row in each table and a line of statements"
        assert "retry after step 10 of 20 failed" in peers and "cross-check over the counting pass" in peers
        assert ("with synchronous_commit on, 20 commit records and 20 WAL flushes; with it off, 20 commit records"
                " and 0 WAL flushes") in peers, "the WAL flushes are the durable commits, not the commit records"
        thin = next(line for line in peers.splitlines() if line.startswith("  this ledger: thin db.* calls  "))
        assert thin.split()[-4:] == ["2.00", "2.00", "2.00", "1.00"], \
            "a step that runs: two statements, two round trips, two commits, one of them durable"
    assert cluster.admin("SELECT datname FROM pg_database WHERE datname LIKE 'jr_bench_%'") == []
    assert peer_leftovers() <= before, "the peers' cluster and workers are gone"


def test_peers_that_cannot_be_installed_are_skipped_in_one_line_and_the_bench_succeeds(tmp_path):
    venv = tmp_path / "venv-peers"
    offline = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    offline.update(JR_PEERS_VENV=str(venv), PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1")  # no index, no wheels
    out = tmp_path / "peers.txt"
    result = subprocess.run([sys.executable, str(REPO / "bench" / "bench.py"), "--peers-only", "--peer-rounds", "2",
                             "--out", str(out)], env=offline, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    skipped = [line for line in out.read_text().splitlines() if "skipped" in line]
    assert len(skipped) == 1 and skipped[0].startswith(
        f"  skipped: the peers could not be installed into {venv.name} (pip: ERROR: "), skipped
    assert skipped[0].endswith("; they need PyPI once")
    assert not venv.exists(), "a half-made venv is not left to be taken for a good one"


def test_bench_without_createdb_stops_at_once_with_one_line_saying_what_it_needs(cluster, login, tmp_path):
    name, env = login("NOSUPERUSER NOCREATEDB")
    result = bench(env, tmp_path / "bench.txt")
    assert result.returncode == 2
    assert result.stderr == (f"bench: the login {name} may not create databases; bench needs CREATEDB"
                             f" (ALTER ROLE {name} CREATEDB) or run it on the embedded database"
                             " (PGHOST and PGSERVICE unset)\n"), "one line, no traceback"
    assert result.stdout == ""
    assert not (tmp_path / "bench.txt").exists()


def test_bench_with_createdb_but_no_superuser_skips_the_plans_and_runs_the_rest(cluster, login, tmp_path):
    name, env = login("NOSUPERUSER CREATEDB")
    out = tmp_path / "bench.txt"
    result = bench(env, out, "--no-peers")  # the peers' cluster is their own: the login changes nothing there
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = out.read_text()
    assert ("plans inside record_step and step_succeeded: skipped (they need auto_explain, which only a superuser"
            f" may load; the login {name} is not one)") in table
    for heading in ("1. Recording one step, over TCP to 127.0.0.1", "2. Checking one step", "3. Growth",
                    "the DBA views on the big ledger", "4. Concurrency", "5. Outage"):
        assert heading in table
    assert cluster.admin("SELECT datname FROM pg_database WHERE datname LIKE 'jr_bench_%'") == []


def test_bench_that_cannot_connect_says_so_in_one_line(cluster, tmp_path):
    result = bench(dict(cluster.env("postgres"), PGHOST=str(tmp_path)), tmp_path / "bench.txt")  # no server there
    assert result.returncode == 1
    assert result.stderr.startswith("bench: cannot connect: ") and result.stderr.count("\n") == 1, result.stderr
