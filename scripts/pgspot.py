#!/usr/bin/env python3
"""make pgspot: pgspot over every SQL file of the project. Fails on each finding that is neither
fixed nor explained, and on each explanation that no longer matches a finding. A reviewer only:
nothing at run time needs pgspot, and this needs no database.

- The files make migrate runs (db/migrations, db/functions, db/views, db/privileges.sql) are checked
  as it runs them: after what db/migrate.py's pin_search_path runs first in each of its transactions
  (search_path = pg_catalog, pg_temp), taken from migrate.py itself so that a weaker pin shows here.
  Under it a bare name resolves in pg_catalog only, and pgspot does not report it; a function body
  is checked against the function's own SET search_path. tests/test_cotenants.py acts the pin out.
- Every other SQL file is checked as it stands (db/uninstall.sql sets its own search_path).
- A finding that stays is explained at its spot, by a comment anywhere in the statement pgspot
  names, one per finding of that code there:  -- pgspot PS002: why it stays
  The applied migrations cannot take a comment (make migrate refuses a changed one): theirs are
  explained in db/pgspot-explained.txt, which also names the SQL files not checked, and why.

Usage: scripts/pgspot.py [--root DIR]. Exit status 0 when clean; 1 with one line per problem.
"""

import argparse
import collections
import concurrent.futures
import fnmatch
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pglast

EXPLAINED = "db/pgspot-explained.txt"
RUN_BY_MIGRATE = ["db/migrations/*.sql", "db/functions/*.sql", "db/views/*.sql", "db/privileges.sql"]
# Only these files may be explained in EXPLAINED; any other file can carry its comment.
IMMUTABLE = "db/migrations/*.sql"
FINDING = re.compile(r"^(PS\d{3}): ([^:]+): (.*) at line (\d+)$")
SUMMARY = re.compile(r"^Errors: \d+ Warnings: \d+ Unknown: \d+$")
MARKER = re.compile(r"--\s*pgspot (PS\d{3}):\s*(.*)$")
EXPLAINED_FINDING = re.compile(r"^(\S+): (PS\d{3}) (.+)$")
NOT_CHECKED = re.compile(r"^(\S+): not checked$")


class Explanation:
    def __init__(self, line, path, code=None, obj=None):
        self.line, self.path, self.code, self.obj = line, path, code, obj


def read_explained(path):
    """The entries of EXPLAINED, and the problems with its form. Blocks are separated by blank
    lines; in each, lines "file: CODE object" or "glob: not checked" share the reason that follows
    them on lines starting with "why:" (continued on indented lines)."""
    entries, problems, block, why = [], [], [], False
    lines = path.read_text().splitlines() + [""]
    for number, line in enumerate(lines, 1):
        if line.startswith("#"):
            continue
        if not line.strip():
            if block and not why:
                problems.append(f"{EXPLAINED} line {block[0].line}: no why: line explains this block")
            entries += block
            block, why = [], False
        elif line.startswith("why:") or (why and line.startswith(" ")):
            why = why or bool(line[len("why:"):].strip())
        elif why:
            problems.append(f"{EXPLAINED} line {number}: a finding after the why: line; start a new block")
        elif match := NOT_CHECKED.match(line):
            block.append(Explanation(number, match[1]))
        elif match := EXPLAINED_FINDING.match(line):
            block.append(Explanation(number, *match.groups()))
        else:
            problems.append(f"{EXPLAINED} line {number}: neither 'file: CODE object' nor 'glob: not checked'")
    return entries, problems


def migrate_pin(root):
    """What db/migrate.py runs before anything else in each transaction, as one line, so that
    prefixing it to a file leaves pgspot's line numbers as they are."""
    spec = importlib.util.spec_from_file_location("jr_migrate", root / "db" / "migrate.py")
    migrate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migrate)

    class Recorder:
        def __init__(self):
            self.statements = []

        def execute(self, statement, params=None):
            if params is not None:
                sys.exit("pgspot: migrate.py's pin_search_path passes parameters, which this check cannot replay")
            self.statements.append(statement.strip().rstrip(";") + "; ")

    recorder = Recorder()
    migrate.pin_search_path(recorder)
    return "".join(recorder.statements).replace("\n", " ")


def statement_starts(text):
    """The line pgspot names for each top-level statement: the first after the previous one's end,
    so a statement's comments above it count as its own."""
    return sorted({1 + text.count("\n", 0, stmt.stmt_location + 1) for stmt in pglast.parse_sql(text)})


def statement_of(starts, line):
    return max((start for start in starts if start <= line), default=1)


def check_file(text, preamble):
    """pgspot's findings as (code, title, object, line of the statement), or the reason it could not check."""
    run = subprocess.run([sys.executable, "-m", "pgspot"], input=preamble + text, capture_output=True, text=True)
    findings, other = [], []
    for line in run.stdout.splitlines():
        if match := FINDING.match(line):
            code, title, obj, number = match.groups()
            findings.append((code, title, obj, int(number)))
        elif line.strip() and not SUMMARY.match(line):
            other.append(line.strip())
    if run.returncode not in (0, 1) or run.stderr.strip() or other or (run.returncode == 1 and not findings):
        said = (other or run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
        return None, f"pgspot could not check it: {said}"
    return findings, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout to check (default: this one)")
    root = parser.parse_args().root.resolve()

    explained, problems = read_explained(root / EXPLAINED)
    not_checked = [entry for entry in explained if entry.code is None]
    listed = collections.defaultdict(list)  # (file, code, object) -> its entries in EXPLAINED
    for entry in explained:
        if entry.code is not None:
            listed[entry.path, entry.code, entry.obj].append(entry)
            if not fnmatch.fnmatch(entry.path, IMMUTABLE):
                problems.append(f"{EXPLAINED} line {entry.line}: {entry.path} can take a comment at the spot"
                                f" (-- pgspot {entry.code}: why); only applied migrations are explained here")

    # Every *.sql outside dot-directories (.venv, .pg, .cache, .git): a new file is checked unasked.
    files = sorted(path.relative_to(root).as_posix() for path in root.rglob("*.sql")
                   if not any(part.startswith(".") for part in path.relative_to(root).parts))
    for entry in not_checked:
        if not any(fnmatch.fnmatch(name, entry.path) for name in files):
            problems.append(f"{EXPLAINED} line {entry.line}: stale, no SQL file matches {entry.path}")
    checked = [name for name in files if not any(fnmatch.fnmatch(name, entry.path) for entry in not_checked)]

    pin = migrate_pin(root)
    texts = [(root / name).read_text() for name in checked]
    preambles = [pin if any(fnmatch.fnmatch(name, g) for g in RUN_BY_MIGRATE) else "" for name in checked]
    with concurrent.futures.ThreadPoolExecutor() as pool:
        results = list(pool.map(check_file, texts, preambles))
    at_spot = in_file = 0
    for name, text, (findings, failure) in zip(checked, texts, results):
        if failure:
            problems.append(f"{name}: {failure}")
            continue
        # pgspot's own handling of psql meta-commands, so statements are where pgspot sees them.
        starts = statement_starts(re.sub(r"^\\", "-- \\\\", text, flags=re.MULTILINE))
        markers = collections.defaultdict(list)  # (statement, code) -> lines of its comments
        for number, line in enumerate(text.splitlines(), 1):
            if match := MARKER.search(line):
                markers[statement_of(starts, number), match[1]].append(number)
                if not match[2].strip():
                    problems.append(f"{name} line {number}: the pgspot {match[1]} comment does not say why")
        for code, title, obj, number in findings:
            if markers[number, code]:
                markers[number, code].pop(0)
                at_spot += 1
            elif listed[name, code, obj]:
                listed[name, code, obj].pop(0)
                in_file += 1
            else:
                how = f"a comment in the statement: -- pgspot {code}: why"
                if fnmatch.fnmatch(name, IMMUTABLE):
                    how += f"; for an applied migration, a line in {EXPLAINED}"
                problems.append(f"{name} line {number}: {code} {title}: {obj}; neither fixed nor explained ({how})")
        for (_, code), numbers in markers.items():
            problems += [f"{name} line {n}: stale, pgspot reports no {code} in this statement" for n in numbers]
    for (name, code, obj), entries in listed.items():
        problems += [f"{EXPLAINED} line {e.line}: stale, pgspot reports no {code} {obj} in {name}" for e in entries]

    for problem in problems:
        print(f"pgspot: {problem}")
    print(f"pgspot: {len(checked)} SQL files checked, {len(files) - len(checked)} not checked ({EXPLAINED});"
          f" {at_spot} findings explained at their spot, {in_file} in {EXPLAINED}; {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
