"""make bench's peers section: this ledger side by side with what an executor would pick instead.

A 20-step task of no-op steps, run by five contenders, each in a long-lived process of its own
(bench/peers_worker.py): the ledger through StepRecorder and the executor hooks, the ledger through
the thin db.* calls (both in the project's venv), DBOS and LangGraph's PostgresSaver with
durability "sync" and "async" (in .venv-peers, installed here on first use). They share one
private cluster on loopback TCP with passwords, each with its own login and database.

Three passes:
- timing: the coordinator asks each contender for one task a round, in a rotating order, so that
  machine noise hits them alike; each worker times its task and, just before it, the same loop
  without persistence. Then the same for a retry after a failure at step 10. Medians over rounds.
- counting: each contender reconnects through a loopback proxy of its own and runs a few more
  tasks one at a time. Around each, the server's counters: pg_stat_statements (statements, by the
  contender's login), the proxy (round trips), the commit records in the WAL written meanwhile
  (pg_walinspect), and pg_stat_wal.wal_sync (the WAL flushes; see make_flushes_countable).
- idle: what each contender sends while it does nothing.

Commit records cannot tell a durable commit from an asynchronous one (synchronous_commit off
writes the same record and waits for no flush), so the durable commits are counted as what they
wait for: the flushes. calibrate() checks the count on a known case every run.
"""

import contextlib
import fcntl
import itertools
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "bench" / "peers_worker.py"
REQUIREMENTS = REPO / "bench" / "peers-requirements.txt"
PEERS_VENV = Path(os.environ.get("JR_PEERS_VENV") or REPO / ".venv-peers")
STEPS, FAIL_AT = 20, 10
REPLY_TIMEOUT = 120  # seconds a worker may take to answer one request

CONTENDERS = [  # kind, label, which venv runs it
    ("recorder", "this ledger: StepRecorder, executor hooks", "project"),
    ("thin", "this ledger: thin db.* calls", "project"),
    ("dbos", "DBOS: @DBOS.step() in a @DBOS.workflow()", "peers"),
    ("langgraph-sync", "LangGraph PostgresSaver, durability sync", "peers"),
    ("langgraph-async", "LangGraph PostgresSaver, async (default)", "peers"),
]
BASELINE_KIND = "recorder"


class PeerFailed(RuntimeError):
    """A contender's worker failed or stopped answering."""


# -- the peers' venv ------------------------------------------------------------------------------

def last_error_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def peers_python():
    """(the peers venv's python, None), installing it on first use or when the requirements
    changed; (None, why) when it cannot be had. A lock keeps two benches from installing at once."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / "jr-bench-requirements.txt"
    wanted = REQUIREMENTS.read_text()
    with open(PEERS_VENV.parent / f"{PEERS_VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python, None
        print(f"bench: installing the peers ({REQUIREMENTS.relative_to(REPO)}) into {PEERS_VENV}, once", flush=True)
        shutil.rmtree(PEERS_VENV, ignore_errors=True)
        made = subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(PEERS_VENV)],
                              capture_output=True, text=True)
        if made.returncode != 0:
            return None, f"python3 -m venv failed: {last_error_line(made.stderr + made.stdout)}"
        try:
            pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                  "--retries", "1", "--timeout", "20", "-r", str(REQUIREMENTS)],
                                 capture_output=True, text=True, timeout=900)
            failed = pip.returncode != 0 and f"pip: {last_error_line(pip.stderr + pip.stdout)}"
        except subprocess.TimeoutExpired:
            failed = "pip took more than 15 minutes"
        if failed:
            shutil.rmtree(PEERS_VENV, ignore_errors=True)
            return None, failed
        stamp.write_text(wanted)
        return python, None


# -- counting round trips -------------------------------------------------------------------------

class CountingProxy:
    """127.0.0.1:port -> the server, counting round trips: one each time a client sends after the
    server last spoke (or for the first time), however many messages or packets that takes, so a
    pipelined batch counts once. Turns are counted before they are forwarded, so a reply the client
    has received is always counted."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.turns = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._sockets = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                if self._closing.is_set():
                    return
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client, upstream):
        client_spoke_last = False
        try:
            while not self._closing.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        if not client_spoke_last:
                            with self._lock:
                                self.turns += 1
                        client_spoke_last = True
                        upstream.sendall(data)
                    else:
                        client_spoke_last = False
                        client.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            client.close()
            upstream.close()

    def close(self):
        self._closing.set()
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


# -- the contenders' processes --------------------------------------------------------------------

class Worker:
    """One contender's process; ask(op, ...) sends a request and waits for its answer."""

    def __init__(self, kind, label, python, log_dir):
        from pgcluster import LIBPQ_VARS  # tests/pgcluster.py
        self.kind, self.label = kind, label
        self.log_path = log_dir / f"{kind}.log"
        env = {k: v for k, v in os.environ.items() if k not in LIBPQ_VARS}  # nothing but what it is told
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([str(python), str(WORKER), kind], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1, cwd=REPO, env=env)

    def send(self, op, **args):
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()

    def receive(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], REPLY_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            why = "stopped answering" if not ready else f"ended (status {self.proc.poll()})"
            raise PeerFailed(f"{self.kind}: its worker {why}: {self.last_log_line()}")
        reply = json.loads(line)
        if "error" in reply:
            raise PeerFailed(f"{self.kind}: {reply['error']}")
        return reply

    def ask(self, op, **args):
        self.send(op, **args)
        return self.receive()

    def last_log_line(self):
        with contextlib.suppress(OSError):
            return last_error_line(self.log_path.read_text())
        return "no log"

    def close(self):
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError, PeerFailed):
                self.ask("close")
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()


# -- the server -----------------------------------------------------------------------------------

def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_cluster():
    """A private cluster on a loopback port, with pg_stat_statements loaded and WAL kept long
    enough to be read back. The caller destroys it."""
    from pgcluster import Cluster  # tests/pgcluster.py
    cluster = Cluster(port=free_port(), listen="127.0.0.1", root=tempfile.mkdtemp(prefix="jr-peers-"))
    try:
        cluster.start()
        cluster.admin("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        cluster.admin("ALTER SYSTEM SET wal_keep_size = '1GB'")
        cluster.stop()
        cluster.start()
        cluster.admin("CREATE EXTENSION pg_stat_statements")
        cluster.admin("CREATE EXTENSION pg_walinspect")
    except BaseException:
        cluster.destroy()
        raise
    return cluster


# The WAL writer flushes asynchronous commits in the background, every wal_writer_delay or each
# wal_writer_flush_after of WAL; held off (both at their most) while counting, a flush during a task
# is a backend's own, for a commit that waits for it. Checkpoints, which flush too, are held off as well.
COUNTING_SETTINGS = {"wal_writer_delay": "10s", "wal_writer_flush_after": "1GB", "checkpoint_timeout": "1h"}

# A backend publishes its statistics (pg_stat_wal.wal_sync among them) when it goes idle, but at
# most once a second; otherwise up to 10 s later. pg_stat_force_next_flush() makes its next idle
# moment publish them: called from a statement trigger on every table a contender writes, it makes
# each writing transaction's flushes visible before the client has its answer, in whichever of
# the contender's sessions it ran, without a statement or a round trip of its own.
STATS_NOW = """CREATE SCHEMA IF NOT EXISTS jr_bench;
CREATE OR REPLACE FUNCTION jr_bench.stats_now() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_stat_force_next_flush();
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'jr_bench')
               AND n.nspname NOT LIKE 'pg_toast%'
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER jr_bench_stats_now AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE'
                       ' ON %s FOR EACH STATEMENT EXECUTE FUNCTION jr_bench.stats_now()', t);
    END LOOP;
END
$$"""


def make_flushes_countable(cluster, dbnames):
    """Before the counting pass: the WAL writer and checkpoints held off, and every table of each
    database given the trigger that publishes a writing session's statistics at once."""
    for name, value in COUNTING_SETTINGS.items():
        cluster.admin(f"ALTER SYSTEM SET {name} = '{value}'")
    cluster.admin("SELECT pg_reload_conf()")
    for dbname in dbnames:
        cluster.admin(STATS_NOW, dbname=dbname)


def prepare_contender(cluster, kind):
    """Its own login and database; the ledger's migrated, its login a member of jr_executor as the
    executor's is. Returns the connect request's arguments (direct to the server)."""
    name = "jr_peer_" + kind.replace("-", "_")
    password = uuid.uuid4().hex
    if kind in ("recorder", "thin"):
        cluster.admin(f"CREATE DATABASE {name}")
        migrated = cluster.migrate(name)
        if migrated.returncode != 0:
            raise PeerFailed(f"migrating {name} failed: {migrated.stderr.strip()}")
        cluster.admin(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE jr_executor")
    else:
        cluster.admin(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        cluster.admin(f"CREATE DATABASE {name} OWNER {name}")
    return {"host": "127.0.0.1", "port": cluster.port, "user": name, "password": password, "dbname": name}


class Counters:
    """The server's counters, read by the superuser over the cluster's socket (never counted)."""

    def __init__(self, cluster):
        self.conn = cluster.connect()
        self.conn.autocommit = True

    def query(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def snapshot(self, login=None, proxy=None):
        """The counters now: statements by login (when given), the proxy's turns, the WAL's insert
        position and pg_stat_wal.wal_sync."""
        statements, lsn, syncs = self.query(
            "SELECT (SELECT coalesce(sum(s.calls), 0)::bigint FROM pg_stat_statements s"
            " JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = %s), pg_current_wal_insert_lsn()::text,"
            " (SELECT wal_sync FROM pg_stat_wal)", (login,))[0]
        return {"statements": statements, "turns": proxy.turns if proxy else 0, "lsn": lsn, "syncs": syncs}

    def commit_records(self, start_lsn, end_lsn):
        """Commit records in the WAL between two positions: every transaction that wrote and
        committed, whether its commit waited for a WAL flush or not."""
        if start_lsn == end_lsn:
            return 0  # pg_walinspect refuses an empty range
        if self.query("SELECT pg_current_wal_flush_lsn() < %s::pg_lsn", (end_lsn,))[0][0]:
            # pg_walinspect reads only flushed WAL, and an asynchronous commit may end the range:
            # a transactional message is a write whose commit flushes it, after the range.
            self.query("SELECT pg_logical_emit_message(true, 'jr_bench', 'read the WAL back')::text")
        return self.query("SELECT count(*) FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn)"
                          " WHERE resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%%'",
                          (start_lsn, end_lsn))[0][0]

    def delta(self, before, after):
        """What happened between two snapshots: statements, round trips, commit records and WAL
        flushes (pg_stat_wal.wal_sync: with the WAL writer held off and one contender at work, the
        flushes its durable commits waited for)."""
        return {"statements": after["statements"] - before["statements"], "turns": after["turns"] - before["turns"],
                "commits": self.commit_records(before["lsn"], after["lsn"]),
                "flushes": after["syncs"] - before["syncs"]}

    def statements_by_kind(self, login):
        rows = self.query("SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
                          " WHERE r.rolname = %s", (login,))
        kinds = {}
        for query, calls in rows:
            kind = query.split(None, 1)[0].upper() if query.strip() else "?"
            kinds[kind] = kinds.get(kind, 0) + calls
        return kinds

    def backends(self, logins):
        """The pids of the logins' backends."""
        return {pid for (pid,) in self.query("SELECT pid FROM pg_stat_activity WHERE usename = ANY(%s)",
                                             (list(logins),))}

    def wait_gone(self, pids, seconds=15):
        """Until none of these backends is left (a backend publishes its statistics as it exits)."""
        deadline = time.monotonic() + seconds
        while pids and time.monotonic() < deadline:
            if not self.query("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),))[0][0]:
                return
            time.sleep(0.05)

    def close(self):
        self.conn.close()


# -- the passes -----------------------------------------------------------------------------------

def rotations(workers, rounds):
    for i in range(rounds):
        shift = i % len(workers)
        yield workers[shift:] + workers[:shift]


def ask_all(workers, op, per_worker):
    """The same op to every worker at once (they start or reconnect in parallel)."""
    for worker in workers:
        worker.send(op, **per_worker(worker))
    return {worker.kind: worker.receive() for worker in workers}


def timing_pass(workers, rounds, retry_rounds, keys):
    tasks = {w.kind: [] for w in workers}
    retries = {w.kind: [] for w in workers}
    for order in rotations(workers, rounds):
        for worker in order:
            tasks[worker.kind].append(worker.ask("task", task=next(keys)))
    for order in rotations(workers, retry_rounds):
        for worker in order:
            key = next(keys)
            worker.ask("fail", task=key)
            retries[worker.kind].append(worker.ask("retry", task=key))
    return tasks, retries


def counting_pass(workers, counters, proxies, logins, count_tasks, count_retries, keys):
    """Each contender alone: count_tasks tasks, then count_retries failures each followed by its
    retry, each between two snapshots. Per step, the medians over tasks; per retry, the medians.
    Also the totals of every window, for the cross-check."""
    counts, retry_counts, kinds = {}, {}, {}
    windows = {"commits": 0, "flushes": 0}

    def counted(worker, op, key):
        login, proxy = logins[worker.kind], proxies[worker.kind]
        before = counters.snapshot(login, proxy)
        worker.ask(op, task=key)
        delta = counters.delta(before, counters.snapshot(login, proxy))
        for field in windows:
            windows[field] += delta[field]
        return delta

    for worker in workers:
        kinds_before = counters.statements_by_kind(logins[worker.kind])
        per_task = [counted(worker, "task", next(keys)) for _ in range(count_tasks)]
        kinds_after = counters.statements_by_kind(logins[worker.kind])
        kinds[worker.kind] = {k: (n - kinds_before.get(k, 0)) / (count_tasks * STEPS) for k, n in kinds_after.items()
                              if n != kinds_before.get(k, 0)}
        counts[worker.kind] = {field: statistics.median(d[field] for d in per_task) / STEPS
                               for field in ("statements", "turns", "commits", "flushes")}
        per_retry = []
        for _ in range(count_retries):
            key = next(keys)
            counted(worker, "fail", key)
            per_retry.append(counted(worker, "retry", key))
        retry_counts[worker.kind] = {field: statistics.median(d[field] for d in per_retry)
                                     for field in ("turns", "commits", "flushes")}
    return counts, retry_counts, kinds, windows


def calibrate(cluster, counters, commits=STEPS, runs=3):
    """The count on a known case: `commits` one-row transactions with synchronous_commit on, then
    as many with it off, in a database of their own with the contenders' trigger; medians of
    `runs` runs. {setting: (commit records, WAL flushes)}: expected (commits, commits) and (commits, 0)."""
    cluster.admin("CREATE DATABASE jr_peer_calibration")
    cluster.admin("CREATE TABLE known_case (n integer)", dbname="jr_peer_calibration")
    cluster.admin(STATS_NOW, dbname="jr_peer_calibration")
    conn = cluster.connect("jr_peer_calibration")
    conn.autocommit = True
    found = {}
    try:
        with conn.cursor() as cur:
            for setting in ("on", "off"):
                cur.execute(f"SET synchronous_commit = {setting}")
                per_run = []
                for _ in range(runs):
                    before = counters.snapshot()
                    for n in range(commits):
                        cur.execute("INSERT INTO known_case VALUES (%s)", (n,))
                    per_run.append(counters.delta(before, counters.snapshot()))
                found[setting] = tuple(statistics.median(d[field] for d in per_run) for field in ("commits", "flushes"))
    finally:
        conn.close()
    return found


def idle_pass(workers, counters, proxies, logins, seconds):
    """What each contender sends while it does nothing, and what the whole server commits and
    flushes meanwhile (nothing, or another contender's count could take it)."""
    before = {w.kind: counters.snapshot(logins[w.kind], proxies[w.kind]) for w in workers}
    server = counters.snapshot()
    time.sleep(seconds)
    server = counters.delta(server, counters.snapshot())
    after = {w.kind: counters.snapshot(logins[w.kind], proxies[w.kind]) for w in workers}
    per_kind = {kind: {"statements": (after[kind]["statements"] - before[kind]["statements"]) / seconds,
                       "turns": (after[kind]["turns"] - before[kind]["turns"]) / seconds} for kind in before}
    return per_kind, server


# -- the section ----------------------------------------------------------------------------------

def fmt(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def section(say, rounds, number="6"):
    """Run the peers section and say its table; False when it failed (the bench then exits 1)."""
    retry_rounds, count_tasks = max(1, rounds // 4), min(5, max(3, rounds // 8))
    count_retries = 3 if rounds >= 10 else 1
    idle_seconds = 2 if rounds >= 10 else 1
    say(f"\n{number}. Peers: a {STEPS}-step task of no-op steps, through this ledger and through what an executor "
        f"would pick instead; each contender in its own process, asked for one task a round in a rotating order "
        f"({rounds} rounds, {retry_rounds} of a retry; medians); one private cluster over loopback TCP with passwords")
    if not sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        say("  skipped: it starts a private cluster, which needs a PostgreSQL server installed here (make setup)")
        return True
    python, why = peers_python()
    if python is None:
        say(f"  skipped: the peers could not be installed into {PEERS_VENV.name} ({why}); they need PyPI once")
        return True
    log_dir = Path(tempfile.mkdtemp(prefix="jr-peers-logs-"))
    cluster = counters = None
    workers, proxies = [], {}
    try:
        cluster = start_cluster()
        counters = Counters(cluster)
        version = counters.query("SELECT current_setting('server_version')")[0][0]
        direct = {kind: prepare_contender(cluster, kind) for kind, _, _ in CONTENDERS}
        logins = {kind: args["user"] for kind, args in direct.items()}
        workers = [Worker(kind, label, sys.executable if venv == "project" else python, log_dir)
                   for kind, label, venv in CONTENDERS]
        versions = {}
        for reply in ask_all(workers, "connect", lambda w: direct[w.kind]).values():
            versions.update(reply["versions"])
        keys = itertools.count(1)
        for _ in range(2):  # warm up: connections, caches, the first checkpoint tables' pages
            for worker in workers:
                worker.ask("task", task=next(keys))
        tasks, retries = timing_pass(workers, rounds, retry_rounds, keys)

        make_flushes_countable(cluster, [args["dbname"] for args in direct.values()])
        timing_backends = counters.backends(logins.values())
        proxies = {w.kind: CountingProxy(cluster.port) for w in workers}
        ask_all(workers, "connect", lambda w: dict(direct[w.kind], port=proxies[w.kind].port))
        counters.wait_gone(timing_backends)  # each publishes what it had pending as it exits
        for worker in workers:
            worker.ask("task", task=next(keys))
        calibration = calibrate(cluster, counters)
        pass_before = counters.snapshot()
        counts, retry_counts, kinds, windows = counting_pass(workers, counters, proxies, logins, count_tasks,
                                                             count_retries, keys)
        whole_pass = counters.delta(pass_before, counters.snapshot())
        idle = idle_pass(workers, counters, proxies, logins, idle_seconds)
    except (PeerFailed, OSError, psycopg2.Error, subprocess.SubprocessError, RuntimeError) as exc:
        say(f"  failed: {exc}")
        return False
    finally:
        for worker in workers:
            worker.close()
        for proxy in proxies.values():
            proxy.close()
        if counters is not None:
            counters.close()
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(log_dir, ignore_errors=True)
    report(say, version, versions, tasks, retries, counts, retry_counts, kinds, idle, calibration,
           (whole_pass, windows), count_tasks, count_retries, idle_seconds)
    return True


def report(say, version, versions, tasks, retries, counts, retry_counts, kinds, idle, calibration, cross_check,
           count_tasks, count_retries, idle_seconds):
    say(f"  PostgreSQL {version}; " + ", ".join(f"{name} {v}" for name, v in sorted(versions.items())))
    labels = {kind: label for kind, label, _ in CONTENDERS}
    overhead = {kind: statistics.median((t["ms"] - t["baseline_ms"]) / STEPS for t in runs)
                for kind, runs in tasks.items()}
    say(f"  {'per step of a task':<48} {'ms/step':>8} {'vs StepRecorder':>16} {'statements':>11} "
        f"{'round trips':>12} {'commits':>8} {'WAL flushes':>12}")
    for kind, label, _ in CONTENDERS:
        c = counts[kind]
        say(f"  {label:<48} {overhead[kind]:>8.3f} {overhead[kind] / overhead[BASELINE_KIND]:>15.2f}x "
            f"{c['statements']:>11.2f} {c['turns']:>12.2f} {c['commits']:>8.2f} {c['flushes']:>12.2f}")
    say(f"  {f'retry after step {FAIL_AT} of {STEPS} failed':<48} {'ms':>8} {'waiting before':>16} "
        f"{'after':>7} {'steps re-run':>13} {'round trips':>12} {'commits':>8} {'WAL flushes':>12}")
    for kind, label, _ in CONTENDERS:
        runs = retries[kind]
        before = statistics.median(r["before_first_ms"] for r in runs)
        after = statistics.median(r["after_last_ms"] for r in runs)
        rerun = statistics.median(len(r["ran"]) for r in runs)
        rc = retry_counts[kind]
        say(f"  {label:<48} {statistics.median(r['ms'] for r in runs):>8.1f} {before:>16.1f} {after:>7.1f} "
            f"{rerun:>13g} {rc['turns']:>12g} {rc['commits']:>8g} {rc['flushes']:>12g}")
    plain = statistics.median(t["baseline_ms"] for t in tasks[BASELINE_KIND])
    graph = statistics.median(t["baseline_ms"] for t in tasks["langgraph-sync"] + tasks["langgraph-async"])
    say(f"  ms/step: (the task - the same loop without persistence) / {STEPS}, the median over rounds. Without "
        f"persistence: the {STEPS} step functions in a plain loop ({plain:.3f} ms a task); for LangGraph the same "
        f"graph compiled without a checkpointer ({graph:.2f} ms a task, {(graph - plain) / STEPS:.3f} ms/step of "
        f"LangGraph's own, not counted above)")
    say(f"  counted over {count_tasks} more tasks and {count_retries} more retries each, one contender at a time, "
        f"medians:")
    say("    statements: pg_stat_statements by the contender's login (BEGIN, COMMIT and SET included)")
    say("    round trips: a loopback proxy in front of each contender (the client speaking after the server spoke; "
        "a pipelined batch counts once)")
    say("    commits: the commit records in the WAL written meanwhile (pg_walinspect), durable or not: an "
        "asynchronous commit (synchronous_commit off) writes the same record and waits for no flush")
    settings = ", ".join(f"{name} {value}" for name, value in COUNTING_SETTINGS.items())
    say(f"    WAL flushes: pg_stat_wal.wal_sync, the durable commits' flushes: the WAL writer and checkpoints held "
        f"off ({settings}), so a flush is a backend's own, made for a commit that waits for it; a statement trigger "
        f"on each of the contender's tables calls pg_stat_force_next_flush(), so each session publishes its "
        f"flushes before its client has the answer")
    on, off = calibration["on"], calibration["off"]
    say(f"    checked on a known case, {STEPS} one-row commits (median of 3 runs): with synchronous_commit on, "
        f"{on[0]:g} commit records and {on[1]:g} WAL flushes; with it off, {off[0]:g} commit records and "
        f"{off[1]:g} WAL flushes")
    for kind, label, _ in CONTENDERS:
        mix = ", ".join(f"{k} {v:.2f}" for k, v in sorted(kinds[kind].items(), key=lambda kv: -kv[1]))
        why = (" (the SETs are SET LOCAL statement_timeout and lock_timeout, sent in the same string as each call, "
               "so in the same round trip: they bound the call behind PgBouncer too)") if kind == "recorder" else ""
        say(f"    statements per step, {label}: {mix or 'none'}{why}")
    per_kind, server = idle
    busy = [f"{labels[kind]}: {v['statements']:.1f} statements and {v['turns']:.1f} round trips a second"
            for kind, v in per_kind.items() if v["statements"] or v["turns"]]
    say(f"  idle for {idle_seconds} s: " + ("; ".join(busy) if busy else "nobody sent anything")
        + f"; the server meanwhile: {server['commits']} commit records, {server['flushes']} WAL flushes")
    whole, windows = cross_check
    say(f"  cross-check over the counting pass: the WAL holds {whole['commits']} commit records and "
        f"pg_stat_wal.wal_sync rose by {whole['flushes']}; the contenders' counted tasks, failures and retries "
        f"account for {windows['commits']} and {windows['flushes']} of them, the rest are the server's and the "
        f"bench's own")
