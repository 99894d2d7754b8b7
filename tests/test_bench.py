"""make bench still runs: a smoke run of every section, tiny, against a throwaway database server.
It asserts that the table is complete and that the scratch databases are gone; never a time.
Logins with fewer privileges, as on bluefin: without CREATEDB the bench stops at once and says what
it needs; with CREATEDB but no superuser it skips what needs one and runs the rest."""

import subprocess
import sys
import uuid

import pytest
from pgcluster import REPO

QUICK = ["--samples", "40", "--big-rows", "2000", "--duration", "1", "--clients", "1,2", "--cap", "3"]


def bench(env, out):
    return subprocess.run([sys.executable, str(REPO / "bench" / "bench.py"), *QUICK, "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)


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
    result = bench(cluster.env("postgres"), out)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = out.read_text()
    for heading in ("1. Recording one step", "1b. Recording one step, over loopback TCP", "2. Checking one step",
                    "3. Growth", "4. Concurrency", "5. Outage"):
        assert heading in table
    assert "record_step (this project, one call)" in table and "seed: new connection + raw upsert" in table
    assert "plans inside step_succeeded: Index" in table
    assert "more than 3 s" in table, "the seed's approach hangs on a silent peer and is cut off"
    assert cluster.admin("SELECT datname FROM pg_database WHERE datname LIKE 'jr_bench_%'") == []


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
    result = bench(env, out)
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
