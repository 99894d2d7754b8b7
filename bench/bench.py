#!/usr/bin/env python3
"""make bench: the ledger measured side by side with the seed's approach and the physical floor.

Every comparison is interleaved: the contenders take turns call by call (or run by run), in a
rotating order, so that a noisy machine slows them alike. Results are ratios within one run; the
table is printed and written to bench/results/latest.txt. Nothing here asserts a time.

It works in scratch databases of its own (jr_bench_*), created on the server the libpq variables
name and dropped at the end, so the target database is never touched. The login needs CREATEDB
(without it the bench stops at once and says so, exit status 2); without superuser it skips the
plans inside the functions, which need auto_explain.

    bench.py [--samples N] [--big-rows N] [--duration S] [--cap S] [--peer-rounds N] [--no-peers] [--out FILE]
    bench.py --peers-only [--peer-rounds N] [--out FILE]

The last section, the peers (bench/peers.py), runs on a private cluster of its own and installs
DBOS and LangGraph into .venv-peers on first use; --peers-only runs it alone, without the target
server, and writes bench/results/peers-only.txt unless --out says otherwise.
"""

import argparse
import contextlib
import datetime
import multiprocessing
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the loopback proxy the fault tests use

import peers  # noqa: E402 - bench/peers.py, beside this file
from faults import FaultyProxy  # noqa: E402
from jr_step_rewards import StepRecorder, db  # noqa: E402
from jr_step_rewards.failures import classify  # noqa: E402

# The seed's own _record_step_result statement, as the old executor ran it (psycopg2 placeholders).
SEED_UPSERT = (REPO / "tests" / "fixtures" / "seed_upsert.sql").read_text()
SEED_CHECK = """SELECT execution_result FROM jr_step_rewards
    WHERE task_id = %s AND step_number = %s AND execution_result = 'success'"""
RAW_CHECK = "SELECT execution_result = 'success' FROM jr_step_rewards WHERE task_id = %s AND step_number = %s"
TARGET = "/ganuda/jr_executor/task_executor.py"
# Where the bench connects to create and drop its scratch databases: the target database itself
# (the login may be let in nowhere else), unless JR_BENCH_ADMIN_DB names another.
ADMIN_DB = os.environ.get("JR_BENCH_ADMIN_DB") or os.environ.get("PGDATABASE") or "postgres"
# pgbench comes with a server package (postgresql-NN on Debian), which a client-only machine lacks.
PGBENCH = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), key=lambda p: int(p.parts[-3]))[-1:]),
               None)


# -- measuring -----------------------------------------------------------------------------------

def percentiles(samples_ms):
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50": statistics.median(samples_ms), "p95": q[94], "p99": q[98], "n": len(samples_ms)}


def interleave(contenders, rounds):
    """Call each contender once per round, in a rotating order; their latencies in ms."""
    names = list(contenders)
    times = {name: [] for name in names}
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            contenders[name](i)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: percentiles(t) for name, t in times.items()}


# -- scratch databases ----------------------------------------------------------------------------

class Scratch:
    """A database of the bench's own on the target server, migrated, dropped on close."""

    def __init__(self, label):
        self.name = f"jr_bench_{label}_{os.getpid()}"
        admin(f'CREATE DATABASE "{self.name}"')
        env = dict(os.environ, PGDATABASE=self.name)
        migrated = subprocess.run([sys.executable, str(REPO / "db" / "migrate.py")], env=env, capture_output=True,
                                  text=True)
        if migrated.returncode != 0:
            self.drop()
            raise RuntimeError(f"migrating {self.name} failed: {migrated.stderr.strip()}")

    def connect(self, **kwargs):
        conn = psycopg2.connect("", dbname=self.name, **kwargs)
        conn.autocommit = True
        return conn

    def drop(self):
        admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def admin(sql):
    conn = psycopg2.connect("", dbname=ADMIN_DB)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def execute(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def fill(conn, history_rows):
    """A ledger of history_rows events over history_rows / 4 steps, as years of tasks would leave."""
    steps = max(history_rows // 4, 1)
    execute(conn, """
        INSERT INTO jr_step_rewards (task_id, step_number, step_type, target_file, step_content_hash,
                                     execution_result, execution_time_ms, attempts, failed_attempts)
        SELECT 1000000 + s / 10, mod(s, 10), CASE WHEN mod(s, 3) = 0 THEN 'bash' ELSE 'search_replace' END,
               CASE WHEN mod(s, 3) = 0 THEN NULL ELSE 'src/file_' || mod(s, 500) || '.py' END,
               md5(s::text) || md5(s::text), 'success', mod(s, 5000), 2, 0
        FROM generate_series(0, %(steps)s - 1) s""", {"steps": steps})
    execute(conn, """
        INSERT INTO jr_step_attempts (event_id, task_id, step_number, attempt_number, step_type, execution_result,
                                      execution_time_ms, recorded_at, received_at)
        SELECT gen_random_uuid(), 1000000 + (e / 4) / 10, mod(e / 4, 10), 1 + mod(e, 4) / 2, 'bash',
               CASE WHEN mod(e, 2) = 0 THEN 'pending' ELSE 'success' END, mod(e, 5000),
               now() - interval '1 second' * (%(rows)s - e), now() - interval '1 second' * (%(rows)s - e)
        FROM generate_series(0, %(rows)s - 1) e""", {"rows": history_rows})
    execute(conn, "VACUUM ANALYZE jr_step_rewards")
    execute(conn, "VACUUM ANALYZE jr_step_attempts")


def nested_plan_lines(conn, sql):
    """The scan lines of the plans of the statements run inside the functions sql calls."""
    execute(conn, "LOAD 'auto_explain'")
    execute(conn, "SET auto_explain.log_min_duration = 0")
    execute(conn, "SET auto_explain.log_nested_statements = on")
    execute(conn, "SET client_min_messages = log")
    del conn.notices[:]
    conn.autocommit = False
    try:
        execute(conn, sql)
    finally:
        conn.rollback()
        conn.autocommit = True
        execute(conn, "SET client_min_messages = notice")
    scans = []
    for notice in conn.notices:
        scans += [m.strip() for m in re.findall(r"((?:Index Only Scan|Index Scan|Seq Scan|Bitmap Index Scan|"
                                                r"Bitmap Heap Scan)[^\n(]*)", notice)]
    return sorted(set(scans))


# -- the sections ---------------------------------------------------------------------------------

def section_single(connect, samples):
    """Recording and checking one step. connect(**kwargs) opens a connection to the scratch ledger."""
    ledger, raw = connect(), connect()
    recorder = StepRecorder(dict(connect.settings, password=connect.password),
                            spool_path=Path(tempfile.mkdtemp()) / "spool.jsonl", deadline=10)

    def result(i):
        return "pending" if i % 2 == 0 else "success"

    def ours(i):
        db.record_step(ledger, 1 + i // 2, 1, "search_replace", TARGET, result(i), 7)

    def through_recorder(i):
        recorder.record_step(10_000_000 + i // 2, 1, "search_replace", TARGET, result(i), 7)

    def floor(i):
        execute(raw, SEED_UPSERT, (30_000_000 + i // 2, 1, "search_replace", TARGET, "h" * 64, result(i), 7, None))

    def ours_too(i):
        ours(samples + i)

    def seed(i):
        conn = connect(autocommit=False)
        with conn.cursor() as cur:
            cur.execute(SEED_UPSERT, (20_000_000 + i // 2, 1, "search_replace", TARGET, "h" * 64, result(i), 7, None))
        conn.commit()
        conn.close()

    # Two interleaved groups: the seed's connect-per-call disturbs its neighbours (a backend starts
    # and ends every call), so the floor comparison runs without it.
    recording = interleave({"record_step (this project, one call)": ours,
                            "StepRecorder.record_step (worker thread, event)": through_recorder,
                            "raw upsert, persistent connection (floor)": floor}, samples)
    against_seed = interleave({"record_step (this project, one call)": ours_too,
                               "seed: new connection + raw upsert": seed}, samples // 2)

    def check_ours(i):
        db.step_succeeded(ledger, 1 + i % (samples // 2), 1)

    def check_raw(i):
        execute(raw, RAW_CHECK, (1 + i % (samples // 2), 1))

    def check_floor(i):
        execute(raw, "SELECT 1")

    checking = interleave({"step_succeeded (this project)": check_ours,
                           "raw indexed SELECT, persistent connection": check_raw,
                           "SELECT 1 (round-trip floor)": check_floor}, samples)
    recorder.close()
    ledger.close()
    raw.close()
    return recording, against_seed, checking


class Connector:
    """connect(**extra) to one database with fixed settings; .password for the recorder."""

    def __init__(self, password=None, **settings):
        self.settings, self.password = settings, password

    def __call__(self, autocommit=True):
        conn = psycopg2.connect("", password=self.password, **self.settings)
        conn.autocommit = autocommit
        return conn


def loopback_cluster():
    """A private cluster on a loopback TCP port with password (SCRAM) logins, as the executor
    reaches its server. The caller destroys it."""
    from pgcluster import Cluster  # tests/pgcluster.py
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = Cluster(port=port, listen="127.0.0.1")
    try:
        cluster.start()
        name = cluster.create_database()
        migrated = cluster.migrate(name)
        if migrated.returncode != 0:
            raise RuntimeError(migrated.stderr)
        password = uuid.uuid4().hex
        cluster.admin(f"CREATE ROLE jr_bench LOGIN SUPERUSER PASSWORD '{password}'")
    except BaseException:
        cluster.destroy()
        raise
    return cluster, Connector(password, host="127.0.0.1", port=port, user="jr_bench", dbname=name)


def section_growth(small, big, samples, with_plans):
    conns = {"small": small.connect(), "big": big.connect()}

    def rec(size):
        return lambda i: db.record_step(conns[size], 5_000_000 + i // 2, 2, "bash", None,
                                        "pending" if i % 2 == 0 else "failed", 3, "boom")

    def chk(size):
        return lambda i: db.step_succeeded(conns[size], 1_000_000 + (i * 7919) % 1000, i % 10)

    recording = interleave({"small": rec("small"), "big": rec("big")}, samples)
    checking = interleave({"small": chk("small"), "big": chk("big")}, samples)
    plans = {
        "record_step": nested_plan_lines(conns["big"], "SELECT record_step(1000500, 3, 'bash', NULL, 'failed', 7)"),
        "step_succeeded": nested_plan_lines(conns["big"], "SELECT step_succeeded(1000500, 3)"),
    } if with_plans else None
    views = {}
    for query in ("SELECT * FROM jr_step_type_stats", "SELECT * FROM jr_task_progress WHERE task_id = 1000500",
                  "SELECT * FROM jr_retry_effectiveness", "SELECT * FROM jr_failure_hot_spots LIMIT 10"):
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            execute(conns["big"], query)
            runs.append((time.perf_counter() - started) * 1000)
        views[query] = statistics.median(runs)
    for conn in conns.values():
        conn.close()
    return recording, checking, plans, views


def client_loop(dbname, client, duration, queue):
    conn = psycopg2.connect("", dbname=dbname)
    conn.autocommit = True
    latencies, rng = [], random.Random(client)
    stop = time.monotonic() + duration
    while time.monotonic() < stop:  # a step's pending record, then its outcome, as pgbench's script
        task = rng.randrange(50_000_000, 2_000_000_000)  # random, as pgbench's: no locality to exploit
        started = time.perf_counter()
        db.record_step(conn, task, 1, "bash", None, "pending", None)
        db.record_step(conn, task, 1, "bash", None, "success", 5)
        latencies.append((time.perf_counter() - started) * 1000)
    conn.close()
    queue.put(latencies)


def run_ours(scratch, clients, duration):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=client_loop, args=(scratch.name, c, duration, queue)) for c in range(clients)]
    for w in workers:
        w.start()
    latencies = [x for _ in workers for x in queue.get()]
    for w in workers:
        w.join()
    return 2 * len(latencies) / duration, percentiles(latencies)["p99"]


def pgbench_upsert(result):
    values = (":task", "1", "'bash'", "NULL", "'" + "h" * 64 + "'", f"'{result}'", "5", "NULL")
    return " ".join(line.strip() for line in SEED_UPSERT.replace("%s", "{}").format(*values).splitlines()).strip()


# A step's pending record, then its outcome: two transactions, as the executor makes them.
PGBENCH_RAW = "\n".join(["\\set task random(50000000, 2000000000)", pgbench_upsert("pending") + ";",
                         pgbench_upsert("success") + ";", ""])
PGBENCH_LEDGER = "\n".join(["\\set task random(50000000, 2000000000)",
                            "SELECT public.record_step(:task, 1, 'bash', NULL, 'pending', NULL);",
                            "SELECT public.record_step(:task, 1, 'bash', NULL, 'success', 5);", ""])


def run_pgbench(scratch, clients, duration, workdir, script_text):
    script = workdir / "script.sql"
    script.write_text(script_text)
    for old in workdir.glob("pgbench_log*"):
        old.unlink()
    result = subprocess.run(
        [str(PGBENCH), "-n", "-M", "simple", "-c", str(clients), "-j", str(clients), "-T", str(duration),
         "-f", str(script), "-l", "--log-prefix", str(workdir / "pgbench_log"), scratch.name],
        capture_output=True, text=True, check=True)
    tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))
    latencies = [int(line.split()[2]) / 1000 for log in workdir.glob("pgbench_log*") for line in log.open()]
    return 2 * tps, percentiles(latencies)["p99"]


def section_concurrency(scratch, duration, client_counts):
    workdir = Path(tempfile.mkdtemp(prefix="jr-bench-"))
    rows = []
    try:
        for n, clients in enumerate(client_counts):
            runs = [("python", lambda c=clients: run_ours(scratch, c, duration)),
                    ("ledger", lambda c=clients: run_pgbench(scratch, c, duration, workdir, PGBENCH_LEDGER)),
                    ("raw", lambda c=clients: run_pgbench(scratch, c, duration, workdir, PGBENCH_RAW))]
            runs = runs[n % 3:] + runs[:n % 3]
            got = {name: run() for name, run in runs}
            rows.append((clients, got))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


OUTAGE_RUN = textwrap.dedent("""
    import hashlib, sys, time, tempfile
    from pathlib import Path
    import psycopg2
    from jr_step_rewards import StepRecorder, db
    setup, dsn = sys.argv[1], sys.argv[2]
    started = time.monotonic()
    if setup == "ours":
        recorder = StepRecorder(dsn=dsn, spool_path=Path(tempfile.mkdtemp()) / "spool.jsonl")
        for step in range(1, 21):
            recorder.step_succeeded(1, step)
            recorder.record_step(1, step, "bash", None, "pending")
            recorder.record_step(1, step, "bash", None, "success", 5)
    elif setup == "seed":  # the seed's methods: connect per call, swallow every error
        def call(sql, params):
            try:
                conn = psycopg2.connect(dsn)
                cur = conn.cursor()
                cur.execute(sql, params)
                conn.commit()
                conn.close()
            except Exception:
                pass
        for step in range(1, 21):  # _step_already_succeeded, then _record_step_result twice
            for _ in range(3):
                call("SELECT 1", None)
    else:  # a bare psycopg2 call: one connection, no timeouts
        conn = None
        for step in range(1, 21):
            for _ in range(3):
                try:
                    if conn is None or conn.closed:
                        conn = psycopg2.connect(dsn)
                        conn.autocommit = True
                    conn.cursor().execute("SELECT 1")
                except Exception:
                    conn = None
    print(time.monotonic() - started)
""")


def section_outage(scratch, cap):
    """Seconds a 20-step task spends recording with the database down, and with a silent peer."""
    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rows = []
    for fault in ("database down (connection refused)", "peer silent (accepts, never answers)"):
        for setup, label in (("ours", "this project (StepRecorder)"), ("seed", "seed: connect per call"),
                             ("bare", "bare psycopg2, no timeouts")):
            proxy = None
            if fault.startswith("peer"):
                proxy = FaultyProxy("127.0.0.1", 1)
                proxy.set_mode("silent")
                dsn = f"host=127.0.0.1 port={proxy.port} dbname={scratch.name} user=nobody"
            else:
                dsn = f"host=127.0.0.1 port={port} dbname={scratch.name} user=nobody"
            try:
                result = subprocess.run([sys.executable, "-c", OUTAGE_RUN, setup, dsn], capture_output=True, text=True,
                                        timeout=cap)
                seconds = f"{float(result.stdout.strip().splitlines()[-1]):.2f} s"
            except subprocess.TimeoutExpired:
                seconds = f"more than {cap:g} s"
            finally:
                if proxy:
                    proxy.close()
            rows.append((fault, label, seconds))
    return rows


# -- report ---------------------------------------------------------------------------------------

def fmt_row(name, p, base=None):
    ratio = f"{p['p50'] / base['p50']:.2f}x" if base else "1.00x"
    return f"  {name:<50} {p['p50']:8.3f} {p['p95']:8.3f} {p['p99']:8.3f}   {ratio}"


def server():
    """What the bench needs to know of the server and of the login before it starts."""
    conn = psycopg2.connect("", dbname=ADMIN_DB)
    version, login, superuser, createdb = execute(
        conn, "SELECT current_setting('server_version'), r.rolname::text, r.rolsuper, r.rolsuper OR r.rolcreatedb"
              " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user")[0]
    host = conn.get_dsn_parameters().get("host", "")
    conn.close()
    return {"version": version, "host": host, "login": login, "superuser": superuser, "createdb": createdb}


def machine(version=None, host=None):
    """The machine in one line (and the target server's, when given), and the transport to it."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    transport = None if host is None else "a Unix socket (trust)" if host.startswith("/") else f"TCP to {host}"
    server = f"PostgreSQL {version} over {transport}, " if version else ""
    return (f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
            f"{server}Python {platform.python_version()}, "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"), transport


def report_single(say, header, recording, against_seed, checking, transport, number="1", only_recording=False):
    say(f"\n{number}. Recording one step, over {transport} (baseline: the raw upsert on a persistent connection)")
    say(header)
    base = recording["raw upsert, persistent connection (floor)"]
    for name, p in recording.items():
        say(fmt_row(name, p, base))
    say("  and, interleaved on their own:")
    base = against_seed["record_step (this project, one call)"]
    for name, p in against_seed.items():
        say(fmt_row(name, p, base))
    if only_recording:
        return
    say("\n2. Checking one step (baseline: the raw indexed SELECT)")
    say(header)
    base = checking["raw indexed SELECT, persistent connection"]
    for name, p in checking.items():
        say(fmt_row(name, p, base))


def report_concurrency(say, main_db, duration, client_counts):
    say(f"\n4. Concurrency: clients recording at once, {duration:g} s a run, each client making a step's "
        "pending record then its outcome. Records per second, and p99 in ms per pair. The ceiling is pgbench "
        "running the raw upsert; record_step is measured from pgbench too (the same C client: the ledger's own "
        "cost) and from Python processes (what executors see; on this machine their CPU is taken from the "
        "server's two cores)")
    say(f"  {'clients':>7} {'raw upsert/s':>13} {'p99':>6}   {'record_step/s':>13} {'p99':>6} {'ratio':>6}"
        f"   {'from Python/s':>13} {'p99':>6} {'ratio':>6}")
    for clients, got in section_concurrency(main_db, duration, client_counts):
        (raw_tps, raw_p99), (led_tps, led_p99), (py_tps, py_p99) = got["raw"], got["ledger"], got["python"]
        say(f"  {clients:>7} {raw_tps:>13.0f} {raw_p99:>6.2f}   {led_tps:>13.0f} {led_p99:>6.2f} "
            f"{led_tps / raw_tps:>5.2f}x   {py_tps:>13.0f} {py_p99:>6.2f} {py_tps / raw_tps:>5.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="calls per contender (default 2000)")
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="history rows of the big ledger (10000000 ok)")
    parser.add_argument("--duration", type=int, default=3, help="seconds per concurrency run (default 3)")
    parser.add_argument("--clients", type=lambda v: [int(c) for c in v.split(",")], default=[1, 2, 4, 8],
                        help="client counts of the concurrency runs (default 1,2,4,8)")
    parser.add_argument("--cap", type=float, default=20, help="seconds before an outage run is cut off (default 20)")
    parser.add_argument("--peer-rounds", type=int, default=40,
                        help="rounds of the peers section (default 40; 2 for a smoke run)")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers section")
    parser.add_argument("--peers-only", action="store_true",
                        help="only the peers section (its own cluster: the target server is not used)")
    parser.add_argument("--out", help="the table's file (default bench/results/latest.txt; with --peers-only "
                                      "bench/results/peers-only.txt)")
    args = parser.parse_args()
    results = REPO / "bench" / "results"
    out = Path(args.out or results / ("peers-only.txt" if args.peers_only else "latest.txt"))

    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    def write():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
        print(f"\nwritten to {out}")

    if args.peers_only:
        say(f"make bench --peers-only: {machine()[0]}")
        ok = peers.section(say, args.peer_rounds)
        write()
        sys.exit(0 if ok else 1)

    # What the login may not do is said up front in one line, not found out halfway in a traceback.
    try:
        target = server()
    except psycopg2.OperationalError as exc:
        print(f"bench: cannot connect: {classify(exc).message}", file=sys.stderr)
        sys.exit(1)
    if not target["createdb"]:
        login = target["login"]
        print(f"bench: the login {login} may not create databases; bench needs CREATEDB (ALTER ROLE {login} CREATEDB)"
              " or run it on the embedded database (PGHOST and PGSERVICE unset)", file=sys.stderr)
        sys.exit(2)

    description, transport = machine(target["version"], target["host"])
    say(f"make bench: {description}")
    say(f"latencies in ms; ratio = p50 / the baseline's p50; {args.samples} interleaved calls per contender")
    scratches = []
    try:
        main_db = Scratch("main")
        scratches.append(main_db)
        header = f"  {'':<50} {'p50':>8} {'p95':>8} {'p99':>8}   ratio"
        report_single(say, header, *section_single(Connector(dbname=main_db.name), args.samples), transport)
        if transport.startswith("a Unix"):
            cluster, connector = loopback_cluster()
            try:
                report_single(say, header, *section_single(connector, args.samples),
                              "loopback TCP with a password (SCRAM), as the executor reaches its server; "
                              "a private cluster", number="1b", only_recording=True)
            finally:
                cluster.destroy()

        scratches.append(Scratch("small"))
        scratches.append(Scratch("big"))
        small, big = scratches[-2:]
        say(f"\n3. Growth: history of 10,000 rows against {args.big_rows:,} rows (filling takes a while)")
        fill(small.connect(), 10_000)
        fill(big.connect(), args.big_rows)
        g_rec, g_chk, plans, views = section_growth(small, big, args.samples, with_plans=target["superuser"])
        say(header)
        say(fmt_row("record_step, 10k history", g_rec["small"]))
        say(fmt_row(f"record_step, {args.big_rows // 1000:,}k history", g_rec["big"], g_rec["small"]))
        say(fmt_row("step_succeeded, 10k history", g_chk["small"]))
        say(fmt_row(f"step_succeeded, {args.big_rows // 1000:,}k history", g_chk["big"], g_chk["small"]))
        if plans is None:
            say(f"  plans inside record_step and step_succeeded: skipped (they need auto_explain, which only a"
                f" superuser may load; the login {target['login']} is not one)")
        else:
            for name, scans in plans.items():
                say(f"  plans inside {name}: " + "; ".join(scans))
        say(f"  the DBA views on the big ledger ({args.big_rows // 4:,} steps), median of 5 runs:")
        for query, ms in views.items():
            say(f"    {ms:8.1f} ms  {query}")

        if PGBENCH is None:
            say("\n4. Concurrency: skipped: it compares against pgbench, which comes with a PostgreSQL server"
                " package (postgresql-NN on Debian), not installed here")
        else:
            report_concurrency(say, main_db, args.duration, args.clients)

        say(f"\n5. Outage: seconds a 20-step task spends recording (3 calls a step), capped at {args.cap:g} s")
        for fault, label, seconds in section_outage(main_db, args.cap):
            say(f"  {fault:<38} {label:<30} {seconds}")
    finally:
        for scratch in scratches:
            with contextlib.suppress(Exception):
                scratch.drop()
    ok = args.no_peers or peers.section(say, args.peer_rounds)
    write()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
