"""What the command line's output must look like, shared by its tests."""

from __future__ import annotations


def one_error_line(stderr: str) -> str:
    """A usage error: one ``torchlean certify: error: ...`` line on stderr, no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("torchlean certify: error: "), stderr
    return lines[0]
