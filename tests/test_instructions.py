"""The instruction parser, on the seed document itself and on the cases around it."""

import pytest
from jr_step_rewards.instructions import InstructionError, parse_instructions
from pgcluster import REPO

FIXTURE = REPO / "tests" / "fixtures" / "seed_instruction.md"
SHARED_SEED = REPO.parent / "shared" / "seed" / "000_dd09a33d85fa5738.txt"


def test_the_fixture_is_the_seed_verbatim():
    if not SHARED_SEED.exists():
        pytest.skip("../shared is not beside this checkout")
    assert FIXTURE.read_text() == SHARED_SEED.read_text()


def test_the_seed_document_parses_to_its_three_steps_in_order():
    steps = parse_instructions(FIXTURE.read_text())
    assert [(s.number, s.step_type, s.target_file) for s in steps] == [
        (1, "bash", None), (2, "bash", None), (3, "search_replace", "/ganuda/jr_executor/task_executor.py")]
    assert steps[0].command == ("psql -h 192.168.132.222 -U claude -d zammad_production "
                                "-f /ganuda/sql/jr_step_rewards_schema.sql")
    assert steps[1].command.count("psql") == 2
    assert steps[2].search == ("    def _audit_file_operation(self, operation: str, path: str, size: int,"
                               " backup_path: str):\n")
    assert steps[2].replace.startswith("    def _record_step_result(self, task_id: int, step_number: int")
    assert steps[2].replace.endswith(steps[2].search)


def test_other_code_blocks_are_not_steps_and_files_bind_to_the_nearest():
    doc = """**File:** `a.py`

```python
<<<<<<< SEARCH
x = 1
=======
x = 2
>>>>>>> REPLACE
```

```sql
SELECT 1;
```

**File:** b.py

<<<<<<< SEARCH
y = 1
=======
>>>>>>> REPLACE

~~~sh
echo hi
~~~
"""
    steps = parse_instructions(doc)
    assert [(s.step_type, s.target_file, s.search, s.replace, s.command) for s in steps] == [
        ("search_replace", "a.py", "x = 1\n", "x = 2\n", None),
        ("search_replace", "b.py", "y = 1\n", "", None),
        ("bash", None, None, None, "echo hi"),
    ]


def test_a_search_block_without_a_file_or_an_end_is_an_error():
    with pytest.raises(InstructionError, match="line 1: SEARCH block with no \\*\\*File:\\*\\* line"):
        parse_instructions("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n")
    with pytest.raises(InstructionError, match="line 2: SEARCH block without ======= and >>>>>>> REPLACE"):
        parse_instructions("**File:** a.py\n<<<<<<< SEARCH\nx\n")


def test_a_code_block_never_closed_is_an_error_not_a_missing_step():
    with pytest.raises(InstructionError, match="line 3: a code block opened here is never closed"):
        parse_instructions("# Task\n\n```bash\necho one\n")
