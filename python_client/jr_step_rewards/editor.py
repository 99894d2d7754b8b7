"""apply_search_replace: a search/replace edit that is idempotent by construction.

If the edit is already in place, it succeeds and leaves the file alone, so even a crash between
applying an edit and recording it cannot duplicate code on the retry. That includes the seed's own
step 3, whose replacement text ends with its search text: searching again would find it, and a
naive editor would insert the new method a second time.

An occurrence of the search text counts only when it is not part of an occurrence of the
replacement text ("free"):
    replacement present, no free search text   -> already in place: success, file untouched
    exactly one free search text               -> replaced there
    none, or more than one                     -> a clear error, file untouched
The first rule needs evidence: when the replacement is part of the search text (an edit that only
removes text), finding the replacement proves nothing, so the edit must find its search text.
Such an edit, retried after a crash that followed it, fails with "search text not found" and
changes nothing: a safe failure, where guessing could hide a search text that never matched.
Writes are atomic (a temporary file in the same folder, fsync, rename) and keep the file's mode.
Text is handled as UTF-8 bytes, so the rest of the file is kept byte for byte.
"""

import os
import stat
import tempfile


def _occurrences(data, needle):
    positions, start = [], data.find(needle)
    while start != -1:
        positions.append(start)
        start = data.find(needle, start + 1)
    return positions


def _free_occurrences(data, search, replace):
    covered = [(p, p + len(replace)) for p in _occurrences(data, replace)] if replace else []
    return [p for p in _occurrences(data, search)
            if not any(lo <= p and p + len(search) <= hi for lo, hi in covered)]


def apply_search_replace(filepath, search_text, replace_text):
    """Apply one edit. Returns {'success': bool, 'error': str or None, 'changed': bool}."""
    def failed(message):
        return {"success": False, "error": f"{message}: {filepath}", "changed": False}

    if not search_text:
        return failed("search text is empty")
    path = os.path.realpath(filepath)  # edit the file a symlink points to, keep the link
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return failed("file not found")
    except OSError as exc:
        return failed(f"cannot read file ({exc.strerror})")
    if not stat.S_ISREG(st.st_mode):
        return failed("not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return failed(f"cannot read file ({exc.strerror})")

    search, replace = search_text.encode(), replace_text.encode()
    free = _free_occurrences(data, search, replace)
    if replace and replace not in search and not free and replace in data:
        return {"success": True, "error": None, "changed": False}
    if not free:
        return failed("search text not found")
    if len(free) > 1:
        return failed(f"search text found {len(free)} times, expected once")
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return failed("file is read-only")

    at = free[0]
    try:
        _write_atomically(path, data[:at] + replace + data[at + len(search):], st)
    except OSError as exc:
        return failed(f"cannot write file ({exc.strerror})")
    return {"success": True, "error": None, "changed": True}


def _write_atomically(path, data, st):
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".jr-edit", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
