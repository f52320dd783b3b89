"""What the command line's output must look like, shared by its tests."""

from __future__ import annotations

import re

#: an ANSI escape sequence (colour, cursor movement)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def one_error_line(stderr: str, verb: str = "certify") -> str:
    """A usage error: one ``torchlean VERB: error: ...`` line on stderr, no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"torchlean {verb}: error: "), stderr
    return lines[0]


def plain(text: str) -> None:
    """Output for a pipe: no escape sequences, no box drawing."""
    assert not ANSI.search(text), repr(text)
    assert not re.search("[\u2500-\u257f]", text), text
