#!/usr/bin/env python3
"""One contender of make bench's peers section, in a long-lived process of its own.

    peers_worker.py KIND

KIND is recorder or thin (this ledger; run by the project's venv) or dbos, langgraph-sync or
langgraph-async (run by .venv-peers, which has the peers and not the ledger). The coordinator,
bench/peers.py, sends one JSON request a line on stdin and reads one JSON answer a line:

    {"op": "connect", "host", "port", "user", "password", "dbname"}   (again to move to another port)
    {"op": "task", "task": N}    the 20-step task, and the same loop without persistence just before it
    {"op": "fail", "task": N}    the task with step 10 failing
    {"op": "retry", "task": N}   the task again after "fail": its time, and the steps it ran again
    {"op": "close"}

Times are taken here, around the calls, so the pipe to the coordinator costs nothing measured.
Anything a library prints goes to stderr: stdout carries only the answers.
"""

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from importlib import metadata

STEPS = 20
FAIL_AT = 10


class StepFailed(Exception):
    """The failure the retry measurement injects at step FAIL_AT."""


class Steps:
    """The no-op step bodies, counting what ran: the same for every contender."""

    def __init__(self):
        self.fail_at = None
        self.ran = []
        self.first_started = self.last_ended = None

    def reset(self, fail_at=None):
        self.fail_at, self.ran, self.first_started, self.last_ended = fail_at, [], None, None

    def body(self, step_index):
        if self.first_started is None:
            self.first_started = time.perf_counter()
        self.ran.append(step_index)
        self.last_ended = time.perf_counter()
        if step_index == self.fail_at:
            return {"success": False, "error": f"step {step_index} failed (injected)"}
        return {"success": True}

    def plain_loop(self):
        """The same task without persistence: the 20 bodies in a plain loop."""
        for step_index in range(1, STEPS + 1):
            self.body(step_index)


STEP_TYPE = "search_replace"


def target_file(step_index):
    return f"src/module_{step_index}.py"


# -- this ledger ---------------------------------------------------------------------------------

def ledger_step(ledger, task_id, step_index, step_type, target, body):
    """One step of a task through the ledger: None when it already succeeded (skipped), otherwise
    body()'s result, recorded: begin_step (the check by definition, and the pending marker when the
    step must run, in one round trip), then the outcome.

    The one place that calls the ledger, for both variants: the thin db.* calls, and the executor
    hooks as the Jr executor adopts them (_step_already_succeeded(..., step=step), then
    tracked_step(step=step), which records the outcome with the step's definition)."""
    step = {"type": step_type, "path": target, "command": f"no-op {step_index}"}
    if ledger.thin:
        from jr_step_rewards import db
        from jr_step_rewards.records import step_definition_hash
        conn, definition = ledger.conn, step_definition_hash(step)
        if db.begin_step(conn, task_id, step_index, step_type, target, definition, 1) == "skip":
            return None
        started = time.monotonic()
        result = body()
        db.record_step(conn, task_id, step_index, step_type, target, "success" if result["success"] else "failed",
                       int((time.monotonic() - started) * 1000), result.get("error"), step_definition_hash=definition)
        return result
    hooks = ledger.hooks
    if hooks._step_already_succeeded(task_id, step_index, step=step):
        return None
    with hooks.tracked_step(step=step, task_id=task_id, step_number=step_index) as tracked:
        tracked.result = body()
    return tracked.result


class Ledger:
    """recorder: StepRecorder through the executor hooks (StepTrackingMixin), as the Jr executor
    adopts it. thin: db.* on one autocommit psycopg2 connection, nothing around it."""

    packages = ("psycopg2-binary",)

    def __init__(self, kind):
        self.thin = kind == "thin"
        self.steps = Steps()
        self.conn = self.hooks = None
        self.spool_dir = tempfile.mkdtemp(prefix="jr-peers-spool-")

    def connect(self, host, port, user, password, dbname):
        self.close()
        if self.thin:
            import psycopg2
            self.conn = psycopg2.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                                         sslmode="disable")
            self.conn.autocommit = True
        else:
            from jr_step_rewards import StepRecorder, StepTrackingMixin

            class Executor(StepTrackingMixin):
                pass

            self.hooks = Executor()
            self.hooks.step_recorder = StepRecorder(
                dict(host=host, port=port, user=user, password=password, dbname=dbname, sslmode="disable"),
                spool_path=os.path.join(self.spool_dir, f"spool-{port}.jsonl"))

    def run(self, key, fail_at=None):
        self.steps.reset(fail_at)
        for step_index in range(1, STEPS + 1):
            result = ledger_step(self, key, step_index, STEP_TYPE, target_file(step_index),
                                 lambda i=step_index: self.steps.body(i))
            if result is not None and not result["success"]:
                break  # the executor stops at the first failed step

    def retry(self, key):
        self.run(key)

    def baseline(self):
        self.steps.plain_loop()

    def close(self):
        if self.conn is not None:
            self.conn.close()
        if self.hooks is not None:
            self.hooks.step_recorder.close()
        self.conn = self.hooks = None

    def shutdown(self):
        self.close()
        shutil.rmtree(self.spool_dir, ignore_errors=True)


# -- DBOS ----------------------------------------------------------------------------------------

class Dbos:
    """Each step an @DBOS.step() inside a @DBOS.workflow(); the system database on the same server.
    A retry forks the failed workflow from the failed step (DBOS.fork_workflow), DBOS's way to run
    a failed workflow again without re-running the steps that succeeded."""

    packages = ("dbos", "psycopg", "sqlalchemy")

    def __init__(self, kind):
        from dbos import DBOS
        self.DBOS = DBOS
        self.steps = steps = Steps()
        self.failed = {}

        def noop_step(step_index):
            result = steps.body(step_index)
            if not result["success"]:
                raise StepFailed(result["error"])
            return result

        step = DBOS.step(name="noop_step")(noop_step)

        @DBOS.workflow(name="noop_task")
        def task():
            for step_index in range(1, STEPS + 1):
                step(step_index)

        self.task = task
        self.launched = False

    def connect(self, host, port, user, password, dbname):
        self.close()
        self.DBOS(config={"name": "jr-bench-peers", "log_level": "ERROR",
                          "system_database_url": f"postgresql://{user}:{password}@{host}:{port}/{dbname}"
                                                 "?sslmode=disable"})
        self.DBOS.launch()
        self.launched = True

    def _workflow_id(self, key):
        return f"jr-bench-{key}"

    def run(self, key, fail_at=None):
        from dbos import SetWorkflowID
        self.steps.reset(fail_at)
        try:
            with SetWorkflowID(self._workflow_id(key)):
                self.task()
        except StepFailed:
            if fail_at is None:
                raise

    def retry(self, key):
        self.steps.reset()
        self.DBOS.fork_workflow(self._workflow_id(key), FAIL_AT).get_result()

    def baseline(self):
        self.steps.plain_loop()

    def close(self):
        if self.launched:
            self.DBOS.destroy()
            self.launched = False

    def shutdown(self):
        self.close()


# -- LangGraph -----------------------------------------------------------------------------------

class LangGraph:
    """A graph of 20 no-op nodes in a chain, checkpointed by PostgresSaver (psycopg 3), run with
    durability "sync" or "async" (LangGraph's default). A retry invokes the thread again with no
    input: it resumes from the last checkpoint."""

    packages = ("langgraph", "langgraph-checkpoint-postgres", "psycopg")

    def __init__(self, kind):
        from typing import TypedDict

        from langgraph.graph import END, START, StateGraph

        self.durability = kind.split("-", 1)[1]
        self.steps = steps = Steps()

        class State(TypedDict, total=False):
            step: int

        def node(step_index):
            def run(state):
                result = steps.body(step_index)
                if not result["success"]:
                    raise StepFailed(result["error"])
                return {"step": step_index}
            return run

        builder = StateGraph(State)
        previous = START
        for step_index in range(1, STEPS + 1):
            builder.add_node(f"step_{step_index}", node(step_index))
            builder.add_edge(previous, f"step_{step_index}")
            previous = f"step_{step_index}"
        builder.add_edge(previous, END)
        self.builder = builder
        self.plain = builder.compile()  # the same loop without persistence
        self.graph = self.saver_context = None

    def connect(self, host, port, user, password, dbname):
        from langgraph.checkpoint.postgres import PostgresSaver
        self.close()
        self.saver_context = PostgresSaver.from_conn_string(
            f"host={host} port={port} user={user} password={password} dbname={dbname} sslmode=disable")
        saver = self.saver_context.__enter__()
        saver.setup()
        self.graph = self.builder.compile(checkpointer=saver)

    def _config(self, key):
        return {"configurable": {"thread_id": f"jr-bench-{key}"}}

    def run(self, key, fail_at=None):
        self.steps.reset(fail_at)
        try:
            self.graph.invoke({"step": 0}, self._config(key), durability=self.durability)
        except StepFailed:
            if fail_at is None:
                raise

    def retry(self, key):
        self.steps.reset()
        self.graph.invoke(None, self._config(key), durability=self.durability)

    def baseline(self):
        self.plain.invoke({"step": 0})

    def close(self):
        if self.saver_context is not None:
            self.saver_context.__exit__(None, None, None)
        self.graph = self.saver_context = None

    def shutdown(self):
        self.close()


KINDS = {"recorder": Ledger, "thin": Ledger, "dbos": Dbos, "langgraph-sync": LangGraph,
         "langgraph-async": LangGraph}


def ms_since(started):
    return (time.perf_counter() - started) * 1000


def serve(kind, requests, answer):
    contender = KINDS[kind](kind)
    for line in requests:
        request = json.loads(line)
        op = request.pop("op")
        try:
            if op == "connect":
                contender.connect(**request)
                reply = {"versions": {name: metadata.version(name) for name in contender.packages}}
            elif op == "task":
                started = time.perf_counter()
                contender.baseline()
                baseline_ms = ms_since(started)
                started = time.perf_counter()
                contender.run(request["task"])
                reply = {"ms": ms_since(started), "baseline_ms": baseline_ms, "ran": len(contender.steps.ran)}
            elif op == "fail":
                contender.run(request["task"], fail_at=FAIL_AT)
                reply = {"ran": contender.steps.ran}
            elif op == "retry":
                started = time.perf_counter()
                contender.retry(request["task"])
                ended, steps = time.perf_counter(), contender.steps
                reply = {"ms": (ended - started) * 1000, "ran": steps.ran,
                         "before_first_ms": (steps.first_started - started) * 1000 if steps.ran else None,
                         "after_last_ms": (ended - steps.last_ended) * 1000 if steps.ran else None}
            elif op == "close":
                contender.shutdown()
                answer({"closed": True})
                return
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # noqa: BLE001 - told to the coordinator, which stops the section
            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}".strip()}
        answer(reply)
    contender.shutdown()


def main():
    kind = sys.argv[1]
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # what the libraries print goes to stderr, never into the answers
    sys.stdout = sys.stderr

    def answer(reply):
        answers.write(json.dumps(reply) + "\n")

    serve(kind, sys.stdin, answer)


if __name__ == "__main__":
    sys.exit(main())
