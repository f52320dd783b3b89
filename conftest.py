"""Every code example of README.md and docs/*.md runs as a test (sybil).

- A ```python block runs; the blocks of one file share a namespace, top to bottom. A block
  that starts with ``>>>`` is a doctest: its shown output is checked.
- A ```python block whose first line is ``# NAME.py`` is a module the text asks the reader to
  save: it is written to NAME.py in a scratch folder, which is the current folder and first on
  ``sys.path`` while that file's examples run, so the next blocks ``import NAME`` (and a
  command given ``NAME.py`` finds it). The losses those blocks declare are forgotten afterwards.
- ```bash, ```text and other blocks are not run (a test runs what a command block shows).
- ``<!-- skip: next -->`` before a block skips it (sybil's skip directive); use it only for a
  block that cannot run here, and say why beside it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from sybil import Example, Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

_MODULE_FILE = re.compile(r"# (?P<file>[A-Za-z_]\w*\.py)\b")


class _ModuleOrCode(PythonEvaluator):
    """Runs a block, or writes it out when its first line names a module file."""

    def __call__(self, example: Example) -> None:
        found = _MODULE_FILE.match(example.parsed)
        if found is None:
            super().__call__(example)
            return
        folder = Path(example.namespace["__scratch__"].name)
        (folder / found["file"]).write_text(str(example.parsed), encoding="utf-8")


class _Python(PythonCodeBlockParser):
    def __init__(self) -> None:
        super().__init__()
        self.codeblock_parser = CodeBlockParser("python", _ModuleOrCode())


def _setup(namespace: dict[str, Any]) -> None:
    from torchlean import LOSSES

    scratch = tempfile.TemporaryDirectory(prefix="torchlean-docs-")
    namespace["__scratch__"] = scratch
    namespace["__restore__"] = (os.getcwd(), list(sys.path), set(sys.modules), set(LOSSES))
    os.chdir(scratch.name)
    sys.path.insert(0, scratch.name)


def _teardown(namespace: dict[str, Any]) -> None:
    from torchlean.spec.core import declaration

    cwd, path, modules, losses = namespace.pop("__restore__")
    os.chdir(cwd)
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if origin.startswith(namespace["__scratch__"].name):
            del sys.modules[name]
    # the rest of the session sees the package's losses, not the examples' own
    for name in set(declaration.REGISTRY) - losses:
        declaration.unregister(name)
    namespace.pop("__scratch__").cleanup()


pytest_collect_file = Sybil(
    parsers=[_Python(), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    setup=_setup,
    teardown=_teardown,
).pytest()
