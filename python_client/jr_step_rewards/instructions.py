"""parse_instructions: a Jr instruction (markdown) to its numbered steps, in document order.

- Each `<<<<<<< SEARCH` ... `=======` ... `>>>>>>> REPLACE` block is a search_replace step on the
  nearest preceding `**File:**` path, inside a code fence or not.
- Each fenced code block whose language is bash (or sh, shell) is a bash step.
- Other code blocks are not steps.
"""

import dataclasses
import re
from typing import Optional

FILE_LINE = re.compile(r"^\s*\*\*File:\*\*\s*`?([^`\s]+)`?")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
BASH_LANGUAGES = {"bash", "sh", "shell"}


@dataclasses.dataclass(frozen=True)
class Step:
    number: int
    step_type: str
    target_file: Optional[str] = None
    search: Optional[str] = None
    replace: Optional[str] = None
    command: Optional[str] = None

    def as_mapping(self):
        """The step as the Jr executor holds it: {'type': 'search_replace', 'args': {'path', 'search',
        'replace'}} or {'type': 'bash', 'command': ...}; its definition is fingerprinted from this."""
        if self.step_type == "search_replace":
            return {"type": "search_replace", "args": {"path": self.target_file, "search": self.search,
                                                       "replace": self.replace}}
        return {"type": self.step_type, "command": self.command}


class InstructionError(ValueError):
    """The instruction cannot be read as steps; the message names the line."""


def parse_instructions(text):
    steps = []
    target = None
    fence = None  # (marker, language, first line of its content) while inside a fenced block
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip() == "<<<<<<< SEARCH":
            if target is None:
                raise InstructionError(f"line {i + 1}: SEARCH block with no **File:** line before it")
            search, replace, i = _search_replace_block(lines, i)
            steps.append(Step(len(steps) + 1, "search_replace", target_file=target, search=search, replace=replace))
        elif fence is None:
            file_match, fence_match = FILE_LINE.match(line), FENCE.match(line)
            if file_match:
                target = file_match.group(1)
            elif fence_match:
                fence = (fence_match.group(1), fence_match.group(2).lower(), i + 1)
        elif line.strip() == fence[0][0] * len(line.strip()) and len(line.strip()) >= len(fence[0]):
            marker, language, start = fence
            if language in BASH_LANGUAGES:
                command = "\n".join(lines[start:i]).strip()
                if command:
                    steps.append(Step(len(steps) + 1, "bash", command=command))
            fence = None
        i += 1
    if fence is not None:
        raise InstructionError(f"line {fence[2]}: a code block opened here is never closed")
    return steps


def _search_replace_block(lines, start):
    """(search, replace, index of the REPLACE line) for the block opening at lines[start]."""
    try:
        middle = next(j for j in range(start + 1, len(lines)) if lines[j].rstrip() == "=======")
        end = next(j for j in range(middle + 1, len(lines)) if lines[j].rstrip() == ">>>>>>> REPLACE")
    except StopIteration:
        raise InstructionError(f"line {start + 1}: SEARCH block without ======= and >>>>>>> REPLACE") from None
    text = ["".join(line + "\n" for line in lines[a:b]) for a, b in ((start + 1, middle), (middle + 1, end))]
    return text[0], text[1], end
