"""make pgspot (scripts/pgspot.py): pgspot over every SQL file is clean on this checkout, and a copy
of it fails the check when a finding nobody explained appears, when an explanation no longer
matches a finding, and when migrate.py's search_path pin weakens. Needs no database."""

import shutil
import subprocess
import sys

import pytest
from pgcluster import REPO

pytestmark = pytest.mark.skipif(sys.version_info < (3, 10), reason="pgspot needs Python 3.10 or later")


def check(root):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "pgspot.py"), "--root", str(root)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def checkout(tmp_path):
    """A copy of this checkout's files, without its dot-directories (.venv, .pg, .git), to break."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO, root, ignore=lambda _, names: [n for n in names if n.startswith(".") or n == "__pycache__"])
    return root


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}: update the test"
    path.write_text(text.replace(old, new, 1))


def test_every_sql_file_is_clean_or_explained():
    result = check(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("0 problem(s)"), result.stdout


def test_a_new_file_with_a_bare_name_fails_and_is_named(checkout):
    # Outside what make migrate runs, so no pin: now() could be anyone's.
    (checkout / "db" / "housekeeping.sql").write_text(
        "-- A DBA's cleanup.\n"
        "DELETE FROM public.jr_step_attempts a\n"
        "WHERE a.received_at OPERATOR(pg_catalog.<) now() OPERATOR(pg_catalog.-) interval '1 year';\n")
    result = check(checkout)
    assert result.returncode == 1, result.stdout
    assert "pgspot: db/housekeeping.sql line 1: PS016 Unqualified function call: now; neither fixed nor explained" \
        in result.stdout, result.stdout
    assert "1 problem(s)" in result.stdout, result.stdout


def test_one_comment_explains_one_finding(checkout):
    (checkout / "db" / "report.sql").write_text(
        "-- pgspot PS016: a reason for the first count only.\n"
        "SELECT count(*), count(r.id) FROM public.jr_step_rewards r;\n")
    result = check(checkout)
    assert result.returncode == 1, result.stdout
    assert "db/report.sql line 1: PS016 Unqualified function call: count; neither fixed nor explained" in result.stdout
    assert "1 problem(s)" in result.stdout, result.stdout


def test_a_function_without_its_own_search_path_is_checked_as_its_callers_run_it(checkout):
    # migrate's pin covers creating the function, not running it: the body is named.
    edit(checkout / "db" / "functions" / "jr_elide_middle.sql", "SET search_path = pg_catalog, pg_temp\n", "")
    result = check(checkout)
    assert result.returncode == 1, result.stdout
    assert "db/functions/jr_elide_middle.sql line 1: PS005 Function without explicit search_path" in result.stdout
    assert "db/functions/jr_elide_middle.sql line 1: PS016 Unqualified function call: format" in result.stdout


def test_a_finding_whose_explanation_is_removed_fails_and_is_named(checkout):
    edit(checkout / "db" / "pgspot-explained.txt",
         "db/migrations/0001_seed_schema.sql: PS014 idx_exploration_jr\n", "")
    edit(checkout / "db" / "views" / "jr_task_progress.sql", "-- pgspot PS015:", "--")
    result = check(checkout)
    assert result.returncode == 1, result.stdout
    assert ("db/migrations/0001_seed_schema.sql line 40: PS014 Unsafe index creation: idx_exploration_jr;"
            " neither fixed nor explained (a comment in the statement: -- pgspot PS014: why;"
            " for an applied migration, a line in db/pgspot-explained.txt)") in result.stdout, result.stdout
    assert ("db/views/jr_task_progress.sql line 1: PS015 Unsafe view creation: public.jr_task_progress;"
            " neither fixed nor explained (a comment in the statement: -- pgspot PS015: why)") in result.stdout
    assert "2 problem(s)" in result.stdout, result.stdout


def test_an_explanation_that_no_longer_matches_a_finding_fails_as_stale(checkout):
    # Fixed (no OR REPLACE), but the comment stays behind; and a line for a finding that never was.
    edit(checkout / "db" / "views" / "jr_task_progress.sql", "CREATE OR REPLACE VIEW", "CREATE VIEW")
    edit(checkout / "db" / "pgspot-explained.txt", "db/migrations/0001_seed_schema.sql: PS014 idx_exploration_jr\n",
         "db/migrations/0001_seed_schema.sql: PS014 idx_exploration_jr\n"
         "db/migrations/0002_step_attempts.sql: PS014 idx_step_attempts_task\n")
    result = check(checkout)
    assert result.returncode == 1, result.stdout
    assert "db/views/jr_task_progress.sql line 4: stale, pgspot reports no PS015 in this statement" in result.stdout
    assert ("db/pgspot-explained.txt line 20: stale, pgspot reports no PS014 idx_step_attempts_task in"
            " db/migrations/0002_step_attempts.sql") in result.stdout, result.stdout
    assert "2 problem(s)" in result.stdout, result.stdout


def test_the_migrations_are_checked_with_the_pin_migrate_py_sets(checkout):
    edit(checkout / "db" / "migrate.py", "'search_path', 'pg_catalog, pg_temp'", "'search_path', 'public, pg_catalog'")
    result = check(checkout)
    assert result.returncode == 1, result.stdout
    assert "db/migrations/0002_step_attempts.sql line" in result.stdout, result.stdout
    assert "db/privileges.sql line" in result.stdout, result.stdout
