"""jr-steps, the command line, and the demo script behind make demo: readable output and exit codes
that mean something (0 done, 1 a failed step or the database, 2 a bad argument), options before or
after the command, and no password in any message, argparse's included."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import APP_PASSWORD
from jr_step_rewards import cli
from jr_step_rewards.records import StepEvent
from jr_step_rewards.spool import Spool
from pgcluster import REPO

DEMO_TASK = REPO / "examples" / "demo" / "task.md"


def jr_steps(cluster, db, *args, user="postgres", extra_env=None, console_script=False):
    env = {**cluster.env(db, user), **(extra_env or {})}
    command = [os.path.join(os.path.dirname(sys.executable), "jr-steps")] if console_script \
        else [sys.executable, "-m", "jr_step_rewards"]
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def demo_copy(tmp_path):
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples" / "demo" / "project", work)
    return work


def test_run_fails_then_the_retry_skips_what_succeeded(cluster, ledger_db, demo_copy, spool_path, task_id):
    args = ["--spool", str(spool_path), "run", str(DEMO_TASK), "--task-id", str(task_id), "--workdir", str(demo_copy)]
    first = jr_steps(cluster, ledger_db, *args)
    assert first.returncode == 1, first.stderr
    assert f"task {task_id}: 3 steps from {DEMO_TASK}, in {demo_copy}" in first.stdout
    assert "  step 1 search_replace greeter.py: ok in " in first.stdout
    assert "  step 2 bash: FAILED in " in first.stdout and "exit 1: test service not ready yet" in first.stdout
    assert f"task {task_id}: step 2 failed; ran 2, skipped 0. Run it again to retry from there." in first.stdout

    retry = jr_steps(cluster, ledger_db, *args, console_script=True)
    assert retry.returncode == 0, retry.stderr
    assert "  step 1 search_replace greeter.py: skipped, already succeeded" in retry.stdout
    assert f"task {task_id}: done; ran 2, skipped 1 already done" in retry.stdout
    assert (demo_copy / "greeter.py").read_text().count("def shout") == 1

    status = jr_steps(cluster, ledger_db, "status", "--task-id", str(task_id))
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].split() == ["step", "type", "result", "attempts", "time_ms", "updated", "target", "error"]
    assert [line.split()[:4] for line in lines[2:]] == [["1", "search_replace", "success", "1"],
                                                        ["2", "bash", "success", "2"], ["3", "bash", "success", "1"]]

    stats = jr_steps(cluster, ledger_db, "stats")
    assert stats.returncode == 0 and stats.stdout.split()[:9] == [
        "step_type", "steps", "attempts", "failed", "success_rate", "succeeded_now", "p50_ms", "p95_ms", "last_seen"]
    assert "search_replace" in stats.stdout


def test_status_of_an_unknown_task(cluster, ledger_db):
    result = jr_steps(cluster, ledger_db, "status", "--task-id", "99999999")
    assert (result.returncode, result.stdout) == (0, "task 99999999: no steps recorded\n")


@pytest.mark.parametrize(("args", "message"), [
    (["run", "task.md"], "the following arguments are required: --task-id"),
    (["run", "/nonexistent/task.md", "--task-id", "1"], "jr-steps run: cannot read /nonexistent/task.md"),
    (["run", "no_steps.md", "--task-id", "1"], "no_steps.md has no steps"),
    (["status", "--task-id", "seven"], "invalid int value: 'seven'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_exit_2_with_a_clear_message(cluster, ledger_db, tmp_path, args, message):
    (tmp_path / "no_steps.md").write_text("# Notes\n\n```python\nprint('not a step')\n```\n")
    result = subprocess.run([sys.executable, "-m", "jr_step_rewards", *args], cwd=tmp_path, capture_output=True,
                            text=True, env=cluster.env(ledger_db), timeout=60)
    assert result.returncode == 2
    assert message in result.stderr


def test_status_without_select_privilege_or_database_exits_1(cluster, ledger_db, tmp_path):
    denied = jr_steps(cluster, ledger_db, "--dsn", f"host=127.0.0.1 port={cluster.port} user=jr_app "
                      f"password='{APP_PASSWORD}' dbname={ledger_db}", "status", "--task-id", "1")
    assert denied.returncode == 1
    assert denied.stderr == ("jr-steps: login 'jr_app' lacks SELECT on jr_step_rewards (permission denied for table"
                             " jr_step_rewards): a DBA runs GRANT jr_reader TO jr_app\n")
    down = jr_steps(cluster, ledger_db, "stats", extra_env={"PGHOST": str(tmp_path)})
    assert down.returncode == 1 and down.stderr.startswith("jr-steps: database unavailable (OperationalError: ")
    assert APP_PASSWORD not in denied.stdout + denied.stderr


def test_replay_flushes_the_spool_and_says_what_is_left(cluster, ledger_db, spool_path, task_id, tmp_path):
    spool = Spool(spool_path)
    for n in (1, 2):
        spool.append(StepEvent.create(task_id, n, "bash", None, "success", n))

    down = jr_steps(cluster, ledger_db, "--spool", str(spool_path), "replay", extra_env={"PGHOST": str(tmp_path)})
    assert down.returncode == 1
    assert "remaining 2" in down.stdout and "jr-steps replay: stopped:" in down.stderr

    done = jr_steps(cluster, ledger_db, "--spool", str(spool_path), "replay")
    assert done.returncode == 0, done.stderr
    assert f"spool {spool_path}: recorded 2, stale 0, duplicate 0, rejected 0, remaining 0" in done.stdout
    assert cluster.admin("SELECT count(*) FROM jr_step_rewards WHERE task_id = %s", (task_id,),
                         dbname=ledger_db) == [(2,)]


def test_the_demo_shows_the_replanned_retry_skipping_the_edit_at_its_new_number(cluster, ledger_db):
    venv = os.path.dirname(os.path.dirname(sys.executable))
    result = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], capture_output=True, text=True,
                            timeout=120, env={**cluster.env(ledger_db), "JR_VENV": venv})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    attempt_1, attempt_2 = out.split("== Attempt 2")[0], out.split("== Attempt 2")[1].split("== The ledger")[0]
    assert "step 1 search_replace greeter.py: ok" in attempt_1 and "step 2 bash: FAILED" in attempt_1
    assert "step 1 bash: ok" in attempt_2, "the step the re-plan inserted runs"
    assert "step 2 search_replace greeter.py: skipped, already succeeded" in attempt_2
    assert "step 3 bash: ok" in attempt_2 and "step 4 bash: ok" in attempt_2
    assert "Re-applying the edit on the retry, as the old executor did, leaves 2 copies of shout()." in out
    assert "With the ledger the re-planned retry skipped it at its new number: 1 copy." in out
    assert "\033[" not in out, "no terminal escapes when the output is not a terminal"


def test_run_with_the_database_down_finishes_and_says_what_waits_in_the_spool(cluster, ledger_db, demo_copy,
                                                                             spool_path, task_id, tmp_path):
    (demo_copy / ".service-ready").touch()
    result = jr_steps(cluster, ledger_db, "--spool", str(spool_path), "run", str(DEMO_TASK), "--task-id",
                      str(task_id), "--workdir", str(demo_copy), extra_env={"PGHOST": str(tmp_path)})
    assert result.returncode == 0, "every step succeeded: the records waiting in the spool are only a warning"
    assert f"task {task_id}: done; ran 3, skipped 0 already done" in result.stdout
    assert f"6 records wait in the spool {spool_path}, not yet in the ledger: database unavailable (" in result.stderr
    assert "Run 'jr-steps replay' once that is resolved." in result.stderr
    replay = jr_steps(cluster, ledger_db, "--spool", str(spool_path), "replay")
    assert replay.returncode == 0 and "recorded 6" in replay.stdout


def test_run_on_a_database_without_the_ledger_says_so_not_that_the_database_is_down(cluster, fresh_db, demo_copy,
                                                                                    spool_path, task_id):
    (demo_copy / ".service-ready").touch()
    result = jr_steps(cluster, fresh_db, "--spool", str(spool_path), "run", str(DEMO_TASK), "--task-id",
                      str(task_id), "--workdir", str(demo_copy))
    assert result.returncode == 0, result.stderr
    assert f"6 records wait in the spool {spool_path}" in result.stderr
    assert f"the ledger is not installed in database '{fresh_db}'" in result.stderr
    assert "run make migrate" in result.stderr and "database unavailable" not in result.stderr


def test_a_malformed_dsn_never_reaches_the_output(cluster, ledger_db):
    for command in (["status", "--task-id", "1"], ["stats"]):
        result = jr_steps(cluster, ledger_db, "--dsn", "host=127.0.0.1 password=Sup3rSecret pass phrase", *command)
        assert result.returncode == 1
        assert "the DSN is malformed" in result.stderr
        assert "pass" not in result.stderr.replace("password", "") and "phrase" not in result.stderr


def test_replay_says_why_it_stopped(cluster, ledger_db, spool_path, task_id, tmp_path):
    Spool(spool_path).append(StepEvent.create(task_id, 1, "bash", None, "success", 1))
    down = jr_steps(cluster, ledger_db, "--spool", str(spool_path), "replay", extra_env={"PGHOST": str(tmp_path)})
    stopped = [line for line in down.stderr.splitlines() if line.startswith("jr-steps replay: stopped:")]
    assert stopped and stopped[0].startswith(
        "jr-steps replay: stopped: database unavailable (OperationalError: connection to server")


def test_replay_rejected_sends_the_rejected_events_again(cluster, ledger_db, spool_path, task_id):
    spool = Spool(spool_path)
    for n in (1, 2):  # refused once, say by a CHECK a DBA has since relaxed
        spool.reject(StepEvent.create(task_id, n, "bash", None, "success", n), "new row violates check constraint")
    plain = jr_steps(cluster, ledger_db, "--spool", str(spool_path), "replay")
    assert "recorded 0" in plain.stdout and spool_path.with_name("spool.jsonl.rejected").exists(), \
        "a plain replay leaves the rejected file alone"

    result = jr_steps(cluster, ledger_db, "--spool", str(spool_path), "replay", "--rejected")
    assert result.returncode == 0, result.stderr
    assert f"spool {spool_path}: 2 rejected events moved back for replay\n" in result.stdout
    assert f"spool {spool_path}: recorded 2, stale 0, duplicate 0, rejected 0, remaining 0" in result.stdout
    assert not spool_path.with_name("spool.jsonl.rejected").exists()
    assert cluster.admin("SELECT step_number FROM jr_step_rewards WHERE task_id = %s ORDER BY 1", (task_id,),
                         dbname=ledger_db) == [(1,), (2,)]


def test_dsn_and_spool_go_before_or_after_the_command(cluster, ledger_db, spool_path, task_id, tmp_path):
    Spool(spool_path).append(StepEvent.create(task_id, 1, "bash", None, "success", 1))
    dsn = f"host={cluster.host} port={cluster.port} dbname={ledger_db} user=postgres"
    nowhere = {"PGHOST": str(tmp_path)}  # only the --dsn given reaches the database

    replayed = jr_steps(cluster, ledger_db, "replay", "--dsn", dsn, "--spool", str(spool_path), extra_env=nowhere)
    assert replayed.returncode == 0, replayed.stderr
    assert f"spool {spool_path}: recorded 1," in replayed.stdout
    for args in (["--dsn", dsn, "status", "--task-id", str(task_id)],
                 ["status", "--task-id", str(task_id), "--dsn", dsn],
                 ["status", f"--dsn={dsn}", "--task-id", str(task_id)],
                 ["--dsn", "host=/nowhere", "status", "--task-id", str(task_id), "--dsn", dsn]):  # the later wins
        result = jr_steps(cluster, ledger_db, *args, extra_env=nowhere)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.splitlines()[2].split()[:3] == ["1", "bash", "success"]
    stats = jr_steps(cluster, ledger_db, "stats", "--dsn", dsn, extra_env=nowhere)
    assert stats.returncode == 0 and "bash" in stats.stdout


SECRET, URL_SECRET = "S3cret-Pw x7q", "Url-S3cretPw"
DSN = f"host=bluefin port=6432 user=claude password='{SECRET}' dbname=zammad_production"
URL = f"postgresql://claude:{URL_SECRET}@bluefin:6432/zammad_production"


@pytest.mark.parametrize("argv", [
    ["status", "--task-id", "7", "--dsn", DSN, "--bogus"],
    ["status", "--task-id", "7", f"--dsn={DSN}", "extra"],
    ["stats", "--ds", DSN, "extra"],
    ["stats", f"--d={DSN}", "extra"],
    ["status", "--task-id", "7", "--dsn", URL, "--bogus"],
    ["status", "--task-id", "7", f"password={SECRET.split()[0]}"],
    ["status", "--task-id", "7", URL],
    ["status", "--task-id", DSN],
    ["status", "--task-id", "7", "--dsn", DSN, "--dsn"],
    [DSN],
    ["--dsn", DSN, "frobnicate"],
    ["run", "--dsn", DSN],
    ["--spool", "/tmp/x", "replay", "host=bluefin", f"password = '{SECRET}'"],
    ["status", "--task-id", "7", "--", "--dsn", f"host=bluefin {URL_SECRET}"],  # only the --dsn value says secret
    ["stats", "--", f"--dsn=host=bluefin {URL_SECRET}"],
], ids=lambda argv: " ".join(argv).replace(SECRET, "S").replace(SECRET.split()[0], "S").replace(URL_SECRET, "S"))
def test_no_usage_error_shows_a_password(argv, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # argparse's own exit, had it printed the message itself
        status = exc.code
    out, err = capsys.readouterr()
    assert status == 2 and "jr-steps" in err and "error: " in err
    assert [s for s in (SECRET, *SECRET.split(), URL_SECRET) if len(s) >= 6 and s in out + err] == [], err
