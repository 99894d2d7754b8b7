"""StepRecorder: the resilience around the thin caller. Recording must never block or break the
executor, and no record may be lost.

- One persistent autocommit connection, opened lazily, reopened after a failure, with a connect
  timeout, TCP keepalives and tcp_user_timeout. Every statement carries its own statement and lock
  timeouts (bounded_cursor), so nothing depends on session state and it works behind PgBouncer.
- All database I/O runs on the recorder's own daemon thread. The caller waits for it at most until
  its deadline (2 s by default), so even a peer that accepts packets and never answers cannot hold
  the executor longer.
- After a failure a circuit breaker sends calls straight to the spool for a cool-down, then tries
  the database again. While a call that missed its deadline is still stuck, the breaker stays open.
- Nothing raises into the executor: the call returns False. Why is told as what it is, with its fix
  (failures.py): an outage as a WARNING, a problem a person must fix (a refused login, a missing
  privilege, the ledger not installed, ...) as an ERROR; again at most once per report_interval for
  as long as it lasts. Passwords are redacted.
- A record that cannot reach the database goes to the durable spool, which is replayed on the next
  good connection and by `jr-steps replay`. Replays are idempotent (event_id) and never undo newer
  state (event time).
"""

import collections
import concurrent.futures
import logging
import os
import queue
import socket
import threading
import time

import psycopg2
import psycopg2.extensions

from . import db
from .failures import ConfigurationError, classify, describe, dsn_problem, is_permanent, login_and_database, redact
from .records import InvalidEvent, StepEvent, clean_text, content_hash
from .spool import Spool

log = logging.getLogger("jr_step_rewards")
# How many tasks' successes a recorder keeps in memory, for retries while the database cannot answer.
RECENT_TASKS = 64


class _Worker:
    """One daemon thread that owns the connection and runs jobs in order.

    Daemon, so a job stuck on a silent peer never keeps the executor's process from exiting.
    The connection lives in the thread's own loop: a thread started after stop() or in a forked
    child opens its own. (A forked child never closes the parent's connection: psycopg2 leaves a
    connection alone in a process other than the one that opened it.)"""

    def __init__(self, connect):
        self._connect = connect
        self._jobs = None
        self._thread = None
        self._pid = None
        self._active = None

    def submit(self, job):
        if self._thread is None or self._pid != os.getpid():
            self._jobs, self._pid = queue.SimpleQueue(), os.getpid()
            self._thread = threading.Thread(target=self._loop, args=(self._jobs,), name="jr-step-recorder",
                                            daemon=True)
            self._thread.start()
        future = concurrent.futures.Future()
        self._jobs.put((job, future))
        return future

    def _loop(self, jobs):
        conn = None
        while True:
            job, future = jobs.get()
            if job is None:
                break
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                self._active = conn
                result = job(conn)
            except BaseException as exc:  # handed to the caller, never raised on this thread
                if not is_permanent(exc):
                    conn = _close(conn)  # the connection may be broken or mid-statement: start afresh
                self._active = None
                future.set_exception(exc)
            else:
                self._active = None
                future.set_result(result)
        _close(conn)

    def abort(self):
        """Cut the connection the running job uses, from another thread, so a job stuck on a peer
        that never answers fails now instead of never. shutdown(), not close(): the descriptor
        stays the worker's, which then closes the broken connection and opens a new one."""
        conn = self._active
        if conn is None:
            return
        try:
            fd = os.dup(conn.fileno())
        except (OSError, ValueError, psycopg2.Error):
            return  # already closed
        with socket.socket(fileno=fd) as sock:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        """End the thread once the jobs queued so far are done; a later submit starts a new one."""
        if self._thread is not None and self._pid == os.getpid():
            self._jobs.put((None, None))
        self._thread = None


def bounded_cursor(statement_timeout_ms, lock_timeout_ms):
    """A cursor_factory whose execute() sends its statement behind SET LOCALs of both timeouts, in
    one simple-query string: the server runs the string as one implicit transaction (on an
    autocommit connection), so the timeouts bind the statement and end with it.

    Why not the `options` startup parameter: PgBouncer refuses it unless told to ignore it, and then
    the timeouts are silently off; in transaction pooling each transaction may also land on another
    server session, so session settings cannot be relied on at all. (No
    idle_in_transaction_session_timeout either: an implicit transaction is never left idle.)"""
    prefix = (f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}; "
              f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}; ")

    class BoundedCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            return super().execute(prefix + query, vars)

    return BoundedCursor


def _close(conn):
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone either way
            pass
    return None


class StepRecorder:
    """Records step events in the ledger without ever blocking or failing the executor.

    Connection: db_config (the dict the executor passes to psycopg2.connect), or a DSN, or neither
    (the libpq variables PGHOST, PGUSER, ...). Spool: a path, or $JR_STEP_SPOOL, or
    ~/.local/state/jr-step-rewards/spool.jsonl.
    """

    def __init__(self, db_config=None, dsn=None, *, spool_path=None, deadline=2.0, cooldown=5.0,
                 connect_timeout=2, statement_timeout_ms=1500, lock_timeout_ms=500,
                 tcp_user_timeout_ms=5000, executor_id=None, report_interval=60.0):
        self._db_config = dict(db_config or {})
        self._dsn = dsn or ""
        self.spool = Spool(spool_path)
        self.deadline = deadline
        self.cooldown = cooldown
        self.report_interval = report_interval
        self.executor_id = executor_id or f"{socket.gethostname()}:{os.getpid()}"
        self._timeouts = dict(connect_timeout=connect_timeout, statement_timeout_ms=statement_timeout_ms,
                              lock_timeout_ms=lock_timeout_ms, tcp_user_timeout_ms=tcp_user_timeout_ms)
        self._worker = _Worker(self._connect)
        self._open_until = 0.0  # the breaker: 0 closed, else open until then (monotonic)
        self._waiting = None  # a call past its deadline, or a background probe, not yet finished
        self._waiting_since = 0.0
        self._replay_wanted = True  # a previous run may have left events in the spool
        self._recent_successes = {}  # task_id: Counter of its definitions' successes, see _remember_success
        self._dsn_problem = dsn_problem(self._dsn)
        self._secrets = self._find_secrets()
        # Who and where, for messages: guessed from the settings, then as the server reports it.
        self._login, self._dbname = login_and_database(self._db_config, None if self._dsn_problem else self._dsn)
        self._reported = {}  # kind of failure -> when it was last reported (monotonic)

    # -- the executor's calls -------------------------------------------------------------------

    def record_step(self, task_id, step_number, step_type, target_file, execution_result,
                    execution_time_ms=None, error_detail=None, step_definition_hash=None):
        """Record one step event. True when the ledger has it, False otherwise (then it is in the
        spool, or, when the ledger would refuse it for good, logged and kept in the rejected file)."""
        event = self._event(task_id, step_number, step_type, target_file, execution_result, execution_time_ms,
                            error_detail, step_definition_hash)
        if event is None:
            return False
        ok, answer = self._call(lambda conn: self._send(conn, event))
        if not ok:
            self._keep(event, answer)
        if event.execution_result == "success" and event.step_definition_hash and (ok or not is_permanent(answer)):
            self._remember_success(event)
        return ok

    def begin_step(self, task_id, step_number, step_type, target_file, step_definition_hash=None, occurrence=1):
        """The retry check and the pending marker in one round trip. True: run the step (its pending
        marker is in the ledger, or in the spool); False: skip it, it already succeeded in this task,
        by its definition (the occurrence-th success of step_definition_hash) or, without one, by
        its number. When the database cannot answer, the spool's successes decide."""
        event = self._event(task_id, step_number, step_type, target_file, "pending", None, None, step_definition_hash)
        if event is None:
            return True  # not known to have succeeded: the safe default
        ok, answer = self._call(lambda conn: db.begin_step(
            conn, event.task_id, event.step_number, event.step_type, event.target_file, event.step_definition_hash,
            occurrence, event.recorded_at, event.event_id, event.executor))
        if ok:
            return answer == "run"
        if not is_permanent(answer) and self._succeeded_in_spool(event, occurrence):
            return False
        self._keep(event, answer)
        return True

    def step_succeeded(self, task_id, step_number, step_content_hash=None):
        """Did the step already succeed (with this definition, when a hash is given)? Asks the
        database; the spool is read only when the database could not answer, or when it may still
        hold events the database has not had yet. Unsure means False, the safe default."""
        ok, answer = self._call(lambda conn: db.step_succeeded(conn, task_id, step_number, step_content_hash))
        if ok and (answer or not self._replay_wanted):
            return bool(answer)
        if not ok and is_permanent(answer):
            self._warn(f"step_succeeded({task_id!r}, {step_number!r}) refused: {self._why(answer)}")
        try:
            latest = self.spool.latest(task_id, step_number)
        except Exception as exc:  # noqa: BLE001 - an unreadable spool means "not known to have succeeded"
            self._warn(f"could not read the spool {self.spool.path}: {exc}")
            return False
        return (latest is not None and latest.execution_result == "success"
                and step_content_hash in (None, latest.content_hash))

    def set_step_reward(self, task_id, step_number, implicit_reward, verified_outcome=None, retry_decision=None):
        """Write a step's reward fields (None leaves one unchanged). True when written; otherwise
        False and a WARNING saying why. Not spooled: rewards are recomputed from the ledger. Needs a
        login in jr_rewarder: the executor's own (jr_executor) may not grade its steps."""
        ok, answer = self._call(lambda conn: db.set_step_reward(
            conn, task_id, step_number, implicit_reward, verified_outcome, retry_decision))
        if not ok:
            self._warn(f"set_step_reward(task {task_id!r}, step {step_number!r}) was not written: {self._why(answer)}")
        return ok

    def record_exploration(self, jr_type, task_type, novelty_score=None, curiosity_bonus=None, task_outcome=None):
        """Append to jr_exploration_log. The new row's id; otherwise None and a WARNING saying why.
        Not spooled. Needs a login in jr_rewarder, as set_step_reward does."""
        ok, answer = self._call(lambda conn: db.record_exploration(
            conn, clean_text(jr_type), clean_text(task_type), novelty_score, curiosity_bonus, task_outcome))
        if not ok:
            self._warn(f"record_exploration({jr_type!r}, {task_type!r}) was not written: {self._why(answer)}")
            return None
        return answer

    @property
    def breaker_open(self):
        """True while calls go straight to the spool because the database failed recently."""
        return bool(self._open_until)

    @staticmethod
    def content_hash(task_id, step_number, step_type, target_file):
        """The hash record_step stores for this definition, for step_succeeded(..., step_content_hash)."""
        return content_hash(task_id, step_number, clean_text(step_type), clean_text(target_file))

    def replay(self, timeout=60.0):
        """Send the spool to the database now. Returns the spool's counts (see Spool.replay)."""
        if self.spool.is_empty():
            return {"recorded": 0, "stale": 0, "duplicate": 0, "rejected": 0, "busy": False, "remaining": 0,
                    "error": None}
        future = self._worker.submit(self._replay_job)
        try:
            counts = future.result(timeout)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            counts = {"recorded": 0, "stale": 0, "duplicate": 0, "rejected": 0, "busy": False,
                      "remaining": self.spool.count(), "error": exc}
        if counts["error"] is not None:
            counts["error"] = self._redact(self._classify(counts["error"]).message)
        return counts

    def close(self):
        """Stop the worker thread and close the connection (without waiting on a stuck call)."""
        self._worker.stop()

    # -- machinery ------------------------------------------------------------------------------

    def _connect(self):
        if self._dsn_problem:
            raise ConfigurationError(self._dsn_problem)
        t = self._timeouts
        # Only settings libpq keeps to itself, and application_name, which PgBouncer passes on.
        params = {"connect_timeout": t["connect_timeout"], "keepalives": 1, "keepalives_idle": 5,
                  "keepalives_interval": 2, "keepalives_count": 2, "tcp_user_timeout": t["tcp_user_timeout_ms"],
                  "application_name": "jr-step-recorder", **self._db_config}
        conn = psycopg2.connect(self._dsn, cursor_factory=bounded_cursor(t["statement_timeout_ms"],
                                                                         t["lock_timeout_ms"]), **params)
        conn.autocommit = True
        self._login, self._dbname = conn.info.user, conn.info.dbname
        return conn

    def _send(self, conn, event):
        """On the worker: record one event; refusals for good become InvalidEvent."""
        try:
            return db.record_step(conn, **event.as_dict())
        except Exception as exc:
            if is_permanent(exc) and not isinstance(exc, InvalidEvent):
                raise InvalidEvent(str(exc).strip()) from exc
            raise

    def _replay_job(self, conn):
        return self.spool.replay(lambda event: self._send(conn, event))

    def _call(self, job):
        """Run job on the worker within the deadline. (True, result), or (False, the reason).

        The caller waits only while the breaker is closed. A failure opens it: calls go straight
        to the spool, and once the cool-down is over the database is probed in the background (a
        reconnect and a slice of replay) while the caller moves on; the breaker closes when the
        probe succeeds."""
        if self._waiting is not None and not self._waiting.done():
            if time.monotonic() - self._waiting_since > self.deadline + self._timeouts["connect_timeout"]:
                self._worker.abort()
            return False, "the database has not answered an earlier call yet"
        self._waiting = None
        if self._open_until:
            if time.monotonic() < self._open_until:
                return False, "the database failed recently (circuit breaker open)"
            self._probe()
            return False, "the database failed recently; checking it in the background"
        if self._replay_wanted:
            self._replay_wanted = False
            self._worker.submit(self._background_replay)
        future = self._worker.submit(job)
        try:
            return True, future.result(timeout=self.deadline)
        except concurrent.futures.TimeoutError:
            self._hold(future)
            self._worker.abort()
            late = TimeoutError(f"no answer within {self.deadline:g} s")
            self._trip(self._classify(late))
            return False, late
        except Exception as exc:  # noqa: BLE001 - every failure ends here, none reaches the executor
            failure = self._classify(exc)
            if not failure.permanent:  # a refusal for good is the caller's to report
                self._trip(failure)
            return False, exc

    def _hold(self, future):
        self._waiting, self._waiting_since = future, time.monotonic()

    def _probe(self):
        """Half-open, in the background: one job that reconnects and replays a slice of the spool
        (or asks SELECT 1). It closes the breaker when it succeeds; when it fails the breaker
        stays open for another cool-down."""
        self._open_until = time.monotonic() + self.cooldown
        future = self._worker.submit(self._probe_job)
        self._hold(future)
        future.add_done_callback(self._probed)

    def _probe_job(self, conn):
        if self._background_replay(conn) is None:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")

    def _probed(self, future):
        """On the worker, when the probe ends."""
        if future.exception() is None:
            self._open_until = 0.0
            self._reported.clear()  # whatever it was is over: a new failure is news again
            log.info("jr_step_rewards: the database answers again; recording directly")
        else:
            self._report(self._classify(future.exception()))

    def _background_replay(self, conn):
        """On the worker, before the next job: replay what earlier outages left in the spool, for
        half the caller's deadline at most, so a long spool never makes the caller's own call late.
        What is left goes before the next call, and so on until the spool is empty. None when
        there was nothing to replay."""
        if self.spool.is_empty():
            return None
        counts = self.spool.replay(lambda event: self._send(conn, event), until=time.monotonic() + self.deadline / 2)
        if counts["remaining"] != 0:
            self._replay_wanted = True
        if counts["error"] is not None:
            raise counts["error"]  # the worker drops the connection; the next job reconnects
        log.info("jr_step_rewards: replayed from the spool: %s", counts)
        return counts

    def _trip(self, failure):
        """Open the breaker after a call failed, and say why."""
        self._open_until = time.monotonic() + self.cooldown
        self._replay_wanted = True  # whatever fails now is spooled, or the background replay was lost
        self._report(failure)

    def _report(self, failure):
        """Say why the database does not take records: at once, then again at most once per
        report_interval (each kind of failure on its own clock) for as long as it lasts, so a
        problem nobody fixes is never silent. An outage is a WARNING; a problem only a person can
        fix is an ERROR."""
        now = time.monotonic()
        last = self._reported.get(failure.kind)
        if last is not None and now - last < self.report_interval:
            return
        self._reported[failure.kind] = now
        if failure.outage:
            level, then = logging.WARNING, f"spooling to {self.spool.path} and checking it again in the background " \
                                            f"every {self.cooldown:g} s"
        else:
            level, then = logging.ERROR, f"records wait in {self.spool.path} and are sent once this is fixed"
        log.log(level, "jr_step_rewards: %s", self._redact(f"{failure.message}; {then}"))

    def _classify(self, exc):
        return classify(exc, self._login, self._dbname)

    def _why(self, answer):
        """A call's failure as words: the classified exception, or the recorder's own reason."""
        return self._classify(answer).message if isinstance(answer, BaseException) else str(answer)

    def _event(self, task_id, step_number, step_type, target_file, execution_result, execution_time_ms,
               error_detail, step_definition_hash):
        """A new StepEvent, or None (and a WARNING) when the ledger could never take it."""
        try:
            return StepEvent.create(task_id, step_number, step_type, target_file, execution_result, execution_time_ms,
                                    error_detail, executor=self.executor_id, step_definition_hash=step_definition_hash)
        except Exception as exc:  # noqa: BLE001 - bad input must not reach the executor as an exception
            self._warn(f"not recording task {task_id!r} step {step_number!r}: {exc}")
            return None

    def _keep(self, event, answer):
        """An event the database did not take: rejected for good, or spooled to replay."""
        if is_permanent(answer):
            self._spool_write(event, lambda: self.spool.reject(event, self._redact(str(answer).strip())))
            return
        self._spool_write(event, lambda: self.spool.append(event))
        self._replay_wanted = True

    def _remember_success(self, event):
        """Count a success this recorder recorded (in the ledger or the spool), for the tasks it ran
        last: a retry in the same process, while the database cannot answer, knows them too."""
        task = self._recent_successes.pop(event.task_id, None) or collections.Counter()
        task[event.step_definition_hash] += 1
        self._recent_successes[event.task_id] = task  # newest last
        while len(self._recent_successes) > RECENT_TASKS:
            del self._recent_successes[next(iter(self._recent_successes))]

    def _succeeded_in_spool(self, event, occurrence):
        """While the database cannot answer: did the step succeed, by the spool's successes, or by
        those this recorder recorded itself (each holds what the other may lack; never their sum,
        which could count one success twice)?"""
        try:
            if event.step_definition_hash is not None:
                known = self._recent_successes.get(event.task_id, {}).get(event.step_definition_hash, 0)
                return max(known, self.spool.successes(event.task_id, event.step_definition_hash)) >= occurrence
            latest = self.spool.latest(event.task_id, event.step_number)
        except Exception as exc:  # noqa: BLE001 - an unreadable spool means "not known to have succeeded"
            self._warn(f"could not read the spool {self.spool.path}: {exc}")
            return False
        return latest is not None and latest.execution_result == "success"

    def _spool_write(self, event, write):
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - the last resort: say so loudly, never raise
            self._warn(f"could not write the spool {self.spool.path} ({describe(exc)}); this record is lost: "
                       f"task {event.task_id} step {event.step_number} {event.execution_result}, "
                       f"event {event.event_id} at {event.recorded_at}")

    def _find_secrets(self):
        secrets = [self._db_config.get("password"), os.environ.get("PGPASSWORD")]
        if self._dsn and not self._dsn_problem:
            secrets.append(psycopg2.extensions.parse_dsn(self._dsn).get("password"))
        found = set()
        for secret in filter(None, secrets):
            found.add(str(secret))
            found.update(token for token in str(secret).split() if len(token) >= 6)
        return sorted(found, key=len, reverse=True)

    def _redact(self, text):
        return redact(text, self._secrets)

    def _warn(self, message):
        log.warning("jr_step_rewards: %s", self._redact(message))
