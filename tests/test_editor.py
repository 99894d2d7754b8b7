"""The search/replace editor: idempotent by construction, clear errors, atomic writes."""

import os
import stat

from jr_step_rewards.editor import apply_search_replace
from jr_step_rewards.instructions import parse_instructions
from pgcluster import REPO

SEED = (REPO / "tests" / "fixtures" / "seed_instruction.md").read_text()
SEED_EDIT = parse_instructions(SEED)[2]  # the seed's step 3: _record_step_result above _audit_file_operation
EXECUTOR_SOURCE = '''class TaskExecutor:
    def run(self):
        pass

    def _audit_file_operation(self, operation: str, path: str, size: int, backup_path: str):
        pass
'''


def write(tmp_path, text, name="task_executor.py", mode=0o644):
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_seeds_own_edit_applied_twice_inserts_the_method_once(tmp_path):
    assert SEED_EDIT.replace.endswith(SEED_EDIT.search), "the seed's replacement ends with its search text"
    path = write(tmp_path, EXECUTOR_SOURCE)

    first = apply_search_replace(path, SEED_EDIT.search, SEED_EDIT.replace)
    edited = path.read_text()
    second = apply_search_replace(path, SEED_EDIT.search, SEED_EDIT.replace)

    assert first == {"success": True, "error": None, "changed": True}
    assert second == {"success": True, "error": None, "changed": False}
    assert path.read_text() == edited
    assert edited.count("def _record_step_result") == 1
    assert edited.count("def _audit_file_operation") == 1


def test_a_naive_replace_would_have_duplicated_it():
    # The postmortem's bug, kept as a reminder of what the test above guards against.
    text = EXECUTOR_SOURCE.replace(SEED_EDIT.search, SEED_EDIT.replace, 1)
    assert text.replace(SEED_EDIT.search, SEED_EDIT.replace, 1).count("def _record_step_result") == 2


def test_an_edit_already_in_place_leaves_the_file_alone(tmp_path):
    path = write(tmp_path, "a = 2\n")
    before = path.stat().st_mtime_ns
    assert apply_search_replace(path, "a = 1\n", "a = 2\n") == {"success": True, "error": None, "changed": False}
    assert path.stat().st_mtime_ns == before


def test_search_text_not_found_fails_and_leaves_the_file(tmp_path):
    path = write(tmp_path, "x = 1\n")
    result = apply_search_replace(path, "y = 1\n", "y = 2\n")
    assert result["success"] is False
    assert result["error"] == f"search text not found: {path}"
    assert path.read_text() == "x = 1\n"


def test_search_text_found_twice_fails_and_leaves_the_file(tmp_path):
    path = write(tmp_path, "x = 1\nx = 1\n")
    result = apply_search_replace(path, "x = 1\n", "x = 2\n")
    assert result["error"] == f"search text found 2 times, expected once: {path}"
    assert path.read_text() == "x = 1\nx = 1\n"


def test_replacement_text_elsewhere_does_not_hide_a_free_search_text(tmp_path):
    path = write(tmp_path, "b = 2\nb = 1\n")
    assert apply_search_replace(path, "b = 1\n", "b = 2\n")["changed"] is True
    assert path.read_text() == "b = 2\nb = 2\n"


def test_the_write_is_atomic_and_keeps_the_mode(tmp_path):
    path = write(tmp_path, "v = 1\n", mode=0o640)
    inode = path.stat().st_ino
    assert apply_search_replace(path, "v = 1\n", "v = 2\n")["changed"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != inode, "a new file renamed over the old one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task_executor.py"], "no temporary file left"


def test_a_symlink_is_kept_and_its_target_edited(tmp_path):
    target = write(tmp_path, "s = 1\n", name="real.py")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    assert apply_search_replace(link, "s = 1\n", "s = 2\n")["changed"] is True
    assert link.is_symlink() and target.read_text() == "s = 2\n"


def test_bad_targets_fail_clearly(tmp_path):
    readonly = write(tmp_path, "r = 1\n", name="ro.py", mode=0o444)
    cases = {
        tmp_path / "missing.py": "file not found",
        tmp_path: "not a regular file",
        readonly: "file is read-only",
    }
    for path, message in cases.items():
        assert apply_search_replace(path, "r = 1\n", "r = 2\n") == \
            {"success": False, "error": f"{message}: {path}", "changed": False}
    assert readonly.read_text() == "r = 1\n"
    assert apply_search_replace(readonly, "", "x")["error"] == f"search text is empty: {readonly}"


def test_bytes_outside_the_edit_are_kept(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9\nold\n")
    assert apply_search_replace(path, "old\n", "new\n")["changed"] is True
    assert path.read_bytes() == b"caf\xe9\nnew\n"
    assert os.access(path, os.R_OK)


def test_an_edit_that_only_removes_text_must_find_its_search_text(tmp_path):
    path = write(tmp_path, "import os\n")
    result = apply_search_replace(path, "import os\nimport sys\n", "import os\n")
    assert result["success"] is False and result["error"] == f"search text not found: {path}"
    path.write_text("import os\nimport sys\n")
    assert apply_search_replace(path, "import os\nimport sys\n", "import os\n")["changed"] is True
    assert path.read_text() == "import os\n"
