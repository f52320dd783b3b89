"""Users' modules: import one (a ``.py`` file or an importable name) and find the losses it
declares, so that ``torchlean certify --module`` certifies exactly those.

A module declares its losses with :func:`torchlean.define_loss` when it is imported; each
declaration records the module's name as its ``origin``. A loss whose derivative was never
given (``@define_loss`` without ``@<loss>.deriv``) registers nothing; it is found here by the
object the decorator left in the module, and refused.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from torchlean.errors import ParameterError
from torchlean.spec.core.declaration import REGISTRY, LossDeclaration, awaiting_derivative

__all__ = ["UserModule", "load_module"]


@dataclass(frozen=True)
class UserModule:
    """An imported module: its name, the losses it declares, and those left without a
    derivative (by name)."""

    name: str
    module: ModuleType
    losses: tuple[LossDeclaration, ...]
    pending: tuple[str, ...]

    def refuse_pending(self) -> None:
        """Raise ParameterError when a loss of the module declares no derivative."""
        if self.pending:
            name = self.pending[0]
            raise ParameterError(
                f"the {name} loss in {self.name} declares no derivative: decorate its "
                f"derivative term with `@{name}.deriv` (a loss without a derivative cannot be "
                f"certified)"
            )


def load_module(source: str) -> UserModule:
    """Import ``source``, a path to a ``.py`` file or an importable module name, and list the
    losses it declares.

    Raises :class:`~torchlean.errors.ParameterError` naming ``module`` when the file does not
    exist or the module cannot be found or raises while it is imported (a malformed
    declaration, say); the message carries the cause in one line.
    """
    if not isinstance(source, str) or not source.strip():
        raise ParameterError(f"`module` must be a .py file or an importable module name; "
                             f"got {source!r}")
    module = _import_file(source) if _is_path(source) else _import_name(source)
    name = module.__name__
    losses = tuple(d for d in REGISTRY.values() if d.origin == name)
    pending = tuple(awaiting_derivative(vars(module)))
    return UserModule(name, module, losses, pending)


def _is_path(source: str) -> bool:
    return source.endswith(".py") or "/" in source or "\\" in source or Path(source).is_file()


def _import_file(source: str) -> ModuleType:
    path = Path(source).expanduser()
    if not path.is_file():
        raise ParameterError(f"`module` {source!r}: no such file")
    path = path.resolve()
    name = _module_name(path)
    loaded = sys.modules.get(name)
    if loaded is not None and _file_of(loaded) == path:
        return loaded  # imported already (its losses are registered)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ParameterError(f"`module` {source!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # registered before it runs, so that its functions name it as their module (the losses'
    # origin); its folder on the path, so that it may import its neighbours
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ParameterError(f"cannot import {source!r}: {_one_line(exc)}") from None
    finally:
        sys.path.remove(str(path.parent))
    return module


def _module_name(path: Path) -> str:
    """The file's stem, unless another module of that name is loaded (then a suffixed one)."""
    stem = re.sub(r"\W", "_", path.stem)
    if not stem.isidentifier():
        stem = f"_{stem}"
    loaded = sys.modules.get(stem)
    if loaded is None or _file_of(loaded) == path:
        return stem
    return f"{stem}_{zlib.crc32(str(path).encode()):08x}"


def _file_of(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file else None


def _import_name(source: str) -> ModuleType:
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and source.startswith(exc.name):
            raise ParameterError(f"`module` {source!r}: no module named {exc.name!r} (give a "
                                 f".py file or a module on sys.path)") from None
        raise ParameterError(f"cannot import {source!r}: {_one_line(exc)}") from None
    except Exception as exc:
        raise ParameterError(f"cannot import {source!r}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError) and exc.lineno:
        text = f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return " ".join(text.split())
