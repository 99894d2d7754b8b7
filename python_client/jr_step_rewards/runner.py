"""run_bash: one bash step in a subprocess, in the task's working folder, with a timeout.
The exit code decides success; the tail of stderr, with the exit code, is the error detail.

Output goes to temporary files, not pipes: the step is over when bash exits, even if something it
started in the background still holds its output open, and a huge output costs disk, not memory.
"""

import os
import signal
import subprocess
import tempfile

STDERR_TAIL_CHARS = 4000
STDOUT_TAIL_BYTES = 64 * 1024


def run_bash(command, workdir, timeout=600):
    """Returns {'success': bool, 'error': str or None, 'exit_code': int or None, 'stdout': str},
    stdout being at most its last 64 KiB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(["bash", "-c", command], cwd=workdir, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)
        except OSError as exc:
            return {"success": False, "error": f"cannot start bash in {workdir}: {exc.strerror}",
                    "exit_code": None, "stdout": ""}
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: bash and what it started
            proc.wait()
            return {"success": False, "error": f"timed out after {timeout:g} s; killed. stderr: {_stderr_tail(err)}",
                    "exit_code": None, "stdout": _tail(out, STDOUT_TAIL_BYTES)}
        stdout = _tail(out, STDOUT_TAIL_BYTES)
        if proc.returncode == 0:
            return {"success": True, "error": None, "exit_code": 0, "stdout": stdout}
        return {"success": False, "error": f"exit {proc.returncode}: {_stderr_tail(err)}",
                "exit_code": proc.returncode, "stdout": stdout}


def _tail(f, max_bytes):
    """The last max_bytes of a file, decoded (a character cut at the start becomes U+FFFD)."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(size - max_bytes, 0))
    return f.read().decode("utf-8", "replace")


def _stderr_tail(f):
    size = f.seek(0, os.SEEK_END)
    text = _tail(f, STDERR_TAIL_CHARS * 4).strip()  # at most 4 bytes a character
    if len(text) > STDERR_TAIL_CHARS or size > STDERR_TAIL_CHARS * 4:
        cut = text[-STDERR_TAIL_CHARS:]
        return f"…[{size} bytes of stderr; the last {len(cut)} characters follow]…" + cut
    return text
