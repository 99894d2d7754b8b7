"""jr-steps: run an instruction with step tracking, and look at the ledger.

Exit status: 0 done (for run: every step succeeded; records still waiting in the spool are only a
warning on stderr); 1 a step failed, or status, stats or replay could not get their answer from the
database, or replay left records in the spool; 2 a bad argument or an unreadable instruction.

--dsn and --spool go before or after the command. No message shows a password, argparse's usage
errors included: pass it by PGPASSWORD or ~/.pgpass rather than --dsn, which others can read.
"""

import argparse
import logging
import sys

import psycopg2
import psycopg2.extensions

from . import db
from .executor import TaskExecutor
from .failures import classify, dsn_problem, login_and_database, redact
from .instructions import InstructionError, parse_instructions
from .recorder import StepRecorder, bounded_cursor


def _table(headers, rows):
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    rendered = [line.format(*headers), line.format(*("-" * w for w in widths)), *(line.format(*r) for r in cells)]
    return "\n".join(r.rstrip() for r in rendered)


def cmd_run(args):
    try:
        with open(args.file, encoding="utf-8") as f:
            steps = parse_instructions(f.read())
    except (OSError, UnicodeDecodeError, InstructionError) as exc:
        print(f"jr-steps run: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    if not steps:
        print(f"jr-steps run: {args.file} has no steps (no SEARCH/REPLACE blocks, no bash blocks)", file=sys.stderr)
        return 2
    executor = TaskExecutor(workdir=args.workdir)
    executor.step_recorder = StepRecorder(dsn=args.dsn, spool_path=args.spool)
    print(f"task {args.task_id}: {len(steps)} steps from {args.file}, in {executor.workdir}")
    summary = executor.run_task(args.task_id, steps)
    recorder = executor.step_recorder
    waiting, why = 0, None
    if not recorder.spool.is_empty():  # the database could not take them: one more try to deliver now
        counts = recorder.replay(timeout=recorder.deadline)
        waiting, why = counts["remaining"], counts["error"] or "the last try ran out of time"
    recorder.close()
    if summary.failed:
        print(f"task {args.task_id}: step {summary.failed[0]} failed; ran {len(summary.ran)}, "
              f"skipped {len(summary.skipped)}. Run it again to retry from there.")
    else:
        print(f"task {args.task_id}: done; ran {len(summary.ran)}, skipped {len(summary.skipped)} already done")
    if waiting:
        print(f"jr-steps run: {waiting} records wait in the spool {recorder.spool.path}, not yet in the ledger: "
              f"{why}. Run 'jr-steps replay' once that is resolved.", file=sys.stderr)
    return 1 if summary.failed else 0


def _query(args, call):
    """Run call(conn) on a short-lived connection; None (and why, with its fix) when it cannot."""
    problem = dsn_problem(args.dsn)
    if problem:
        print(f"jr-steps: {problem}", file=sys.stderr)
        return None
    login, dbname = login_and_database(dsn=args.dsn)
    try:
        conn = psycopg2.connect(args.dsn or "", connect_timeout=5, application_name="jr-steps",
                                cursor_factory=bounded_cursor(statement_timeout_ms=60000, lock_timeout_ms=5000))
    except psycopg2.Error as exc:
        print(f"jr-steps: {redact(classify(exc, login, dbname).message)}", file=sys.stderr)
        return None
    conn.autocommit = True  # each query its own implicit transaction, as bounded_cursor needs
    try:
        return call(conn)
    except psycopg2.Error as exc:
        print(f"jr-steps: {redact(classify(exc, conn.info.user, conn.info.dbname).message)}", file=sys.stderr)
        return None
    finally:
        conn.close()


def cmd_status(args):
    rows = _query(args, lambda conn: db.task_steps(conn, args.task_id))
    if rows is None:
        return 1
    if not rows:
        print(f"task {args.task_id}: no steps recorded")
        return 0
    print(_table(["step", "type", "result", "attempts", "time_ms", "updated", "target", "error"],
                 [(n, t, r, a, ms, u.strftime("%Y-%m-%d %H:%M:%S") if u else None, f, (e or "")[:60].replace("\n", " "))
                  for n, t, r, a, ms, u, f, e in rows]))
    return 0


def cmd_stats(args):
    rows = _query(args, db.step_type_stats)
    if rows is None:
        return 1
    print(_table(db.STEP_TYPE_STATS_COLUMNS,
                 [(*row[:-1], row[-1].strftime("%Y-%m-%d %H:%M:%S") if row[-1] else None) for row in rows]))
    return 0


def cmd_replay(args):
    recorder = StepRecorder(dsn=args.dsn, spool_path=args.spool)
    if args.rejected:
        moved, kept = recorder.spool.requeue_rejected()
        print(f"spool {recorder.spool.path}: {moved} rejected events moved back for replay"
              + (f"; {kept} unreadable lines stay in {recorder.spool.path}.rejected" if kept else ""))
    counts = recorder.replay()
    recorder.close()
    print(f"spool {recorder.spool.path}: recorded {counts['recorded']}, stale {counts['stale']}, "
          f"duplicate {counts['duplicate']}, rejected {counts['rejected']}, remaining {counts['remaining']}")
    if counts["busy"]:
        print("jr-steps replay: another process is replaying this spool now", file=sys.stderr)
    if counts["error"]:
        print(f"jr-steps replay: stopped: {counts['error']}", file=sys.stderr)
    return 0 if counts["remaining"] == 0 else 1


class UsageError(Exception):
    """A command line argparse cannot take, and the (sub)parser that said so."""

    def __init__(self, parser, message):
        super().__init__(message)
        self.parser, self.message = parser, message


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error goes back to main(), which knows the command line and so what to
    redact, instead of being printed here (argparse quotes the arguments it did not expect)."""

    def error(self, message):
        raise UsageError(self, message)


def _connection_options(p, default):
    p.add_argument("--dsn", default=default, help="libpq connection string (default: the PG* environment "
                   "variables); a password here is visible to other users: prefer PGPASSWORD or ~/.pgpass")
    p.add_argument("--spool", default=default,
                   help="spool file (default: $JR_STEP_SPOOL or ~/.local/state/jr-step-rewards/spool.jsonl)")


def parser():
    p = _Parser(prog="jr-steps", description=__doc__.splitlines()[0])
    _connection_options(p, None)
    # The commands take them too; SUPPRESS, so that a command without them keeps what came before it.
    options = _Parser(add_help=False)
    _connection_options(options, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[options], help="run an instruction's steps, skipping those already done")
    run.add_argument("file")
    run.add_argument("--task-id", type=int, required=True)
    run.add_argument("--workdir", default=".", help="where relative paths and bash steps run (default: .)")
    run.set_defaults(func=cmd_run)
    status = sub.add_parser("status", parents=[options], help="the steps of one task")
    status.add_argument("--task-id", type=int, required=True)
    status.set_defaults(func=cmd_status)
    sub.add_parser("stats", parents=[options], help="results per step type").set_defaults(func=cmd_stats)
    replay = sub.add_parser("replay", parents=[options], help="send the spool to the database")
    replay.add_argument("--rejected", action="store_true",
                        help="first move the events the ledger refused (spool.jsonl.rejected) back into the spool, "
                             "once what it refused is fixed")
    replay.set_defaults(func=cmd_replay)
    return p


def dsn_arguments(argv):
    """The values given to --dsn (or a prefix argparse accepts for it), with their passwords."""
    found = []
    for i, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if len(name) >= 3 and "--dsn".startswith(name):
            value = value if equals else (argv[i + 1] if i + 1 < len(argv) else "")
            found.append(value)
            if not dsn_problem(value):
                found.append(psycopg2.extensions.parse_dsn(value).get("password"))
    return found


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser().parse_args(argv)
    except UsageError as usage:
        usage.parser.print_usage(sys.stderr)
        print(f"{usage.parser.prog}: error: {redact(usage.message, dsn_arguments(argv))}", file=sys.stderr)
        return 2
    return args.func(args)
