"""run_bash: one bash step in a subprocess, in the task's working folder, with a timeout.
The exit code decides success; the tail of stderr, with the exit code, is the error detail."""

import os
import signal
import subprocess

STDERR_TAIL_CHARS = 4000


def run_bash(command, workdir, timeout=600):
    """Returns {'success': bool, 'error': str or None, 'exit_code': int or None, 'stdout': str}."""
    try:
        proc = subprocess.Popen(["bash", "-c", command], cwd=workdir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        return {"success": False, "error": f"cannot start bash in {workdir}: {exc.strerror}",
                "exit_code": None, "stdout": ""}
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: bash and what it started
        out, err = proc.communicate()
        return {"success": False, "error": f"timed out after {timeout:g} s; killed. stderr: {_tail(err)}",
                "exit_code": None, "stdout": out.decode("utf-8", "replace")}
    stdout = out.decode("utf-8", "replace")
    if proc.returncode == 0:
        return {"success": True, "error": None, "exit_code": 0, "stdout": stdout}
    return {"success": False, "error": f"exit {proc.returncode}: {_tail(err)}", "exit_code": proc.returncode,
            "stdout": stdout}


def _tail(stderr_bytes):
    text = stderr_bytes.decode("utf-8", "replace").strip()
    if len(text) > STDERR_TAIL_CHARS:
        text = f"…[{len(text) - STDERR_TAIL_CHARS} characters before]…" + text[-STDERR_TAIL_CHARS:]
    return text
