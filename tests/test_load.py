"""Load: eight processes record overlapping steps at once. Zero errors, exact row and attempt counts,
a final state equal to the newest event of every step, and no deadlock in the server's log, with
log_lock_waits on. JR_SOAK=1 (make soak) makes it ten times longer."""

import json
import multiprocessing
import os
import random
import time

import pytest
from conftest import free_port
from jr_step_rewards import StepRecorder
from pgcluster import Cluster
from test_faults import RESULTS

PROCESSES = 8
EACH = 5000 if os.environ.get("JR_SOAK") else 500
TASKS, STEPS_PER_TASK = 5, 10  # 50 steps shared by every process
PASSWORD = "load-Pw 99!z"


@pytest.fixture(scope="module")
def load_cluster():
    c = Cluster(port=free_port(), listen="127.0.0.1")
    c.start()
    c.admin("ALTER SYSTEM SET log_lock_waits = on")
    c.admin("ALTER SYSTEM SET deadlock_timeout = '50ms'")
    c.admin("SELECT pg_reload_conf()")
    db = c.create_database()
    assert c.migrate(db).returncode == 0
    c.admin("CREATE ROLE jr_load_app LOGIN PASSWORD %s IN ROLE jr_executor", (PASSWORD,))
    yield c, db
    c.destroy()


def record_many(config, spool, seed, results):
    rng = random.Random(seed)
    recorder = StepRecorder(config, spool_path=spool, deadline=10)
    ok = 0
    for _ in range(EACH):
        task, step = 9000 + rng.randrange(TASKS), rng.randrange(1, STEPS_PER_TASK + 1)
        result = rng.choice(["pending", "success", "failed"])
        ok += recorder.record_step(task, step, "bash", None, result, rng.randrange(100),
                                   None if result != "failed" else "boom")
    recorder.close()
    results.put(ok)


def test_eight_processes_recording_overlapping_steps(load_cluster, tmp_path):
    cluster, db = load_cluster
    config = {"host": "127.0.0.1", "port": cluster.port, "user": "jr_load_app", "password": PASSWORD, "dbname": db}
    log = cluster.data.parent / "server.log"
    log_start = log.stat().st_size
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=record_many, args=(config, tmp_path / f"spool-{i}.jsonl", i, results))
               for i in range(PROCESSES)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join(600)
        assert w.exitcode == 0
    elapsed = time.monotonic() - started
    recorded = [results.get(timeout=5) for _ in workers]

    assert recorded == [EACH] * PROCESSES, "every call reached the ledger: zero errors"
    assert not any(p.exists() and p.stat().st_size for p in tmp_path.glob("spool-*.jsonl")), "nothing spooled"
    sql = lambda q: cluster.admin(q, dbname=db)  # noqa: E731
    assert sql("SELECT count(*), count(DISTINCT event_id) FROM jr_step_attempts") == \
        [(PROCESSES * EACH, PROCESSES * EACH)]
    assert sql("""
        SELECT r.task_id, r.step_number
        FROM jr_step_rewards r
        JOIN (SELECT task_id, step_number,
                     count(*) FILTER (WHERE execution_result <> 'pending') AS outcomes,
                     count(*) FILTER (WHERE execution_result = 'failed') AS failures
              FROM jr_step_attempts GROUP BY 1, 2) h USING (task_id, step_number)
        WHERE r.attempts <> h.outcomes OR r.failed_attempts <> h.failures""") == [], "exact attempt counts"
    assert sql("""
        SELECT r.task_id, r.step_number
        FROM jr_step_rewards r
        WHERE NOT EXISTS (
            SELECT FROM jr_step_attempts a
            WHERE a.task_id = r.task_id AND a.step_number = r.step_number
              AND a.recorded_at = (SELECT max(recorded_at) FROM jr_step_attempts b
                                   WHERE b.task_id = r.task_id AND b.step_number = r.step_number)
              AND a.execution_result = r.execution_result
              AND a.execution_time_ms IS NOT DISTINCT FROM r.execution_time_ms
              AND a.recorded_at = r.last_event_at)""") == [], "each step holds its newest event"
    assert sql("SELECT count(*) FROM jr_step_rewards") == [(TASKS * STEPS_PER_TASK,)]

    text = log.read_bytes()[log_start:].decode("utf-8", "replace")
    assert "deadlock detected" not in text
    lock_waits = text.count("still waiting for")
    figures = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    figures["load"] = {"processes": PROCESSES, "records_each": EACH, "errors": 0, "lock_waits_over_50ms": lock_waits,
                       "deadlocks": 0, "seconds": round(elapsed, 2),
                       "records_per_second": round(PROCESSES * EACH / elapsed)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
