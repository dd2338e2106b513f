"""Lazy public names for packages (PEP 562): a package's names load on first use, so importing one of its light
modules (a command line, a config) does not pay for torch, SAELens or TransformerLens."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], on_load: Callable[[], None] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`, whose public name `n` lives in module `exports[n]`.

    `on_load` runs after each first load of a name (e.g. to register the embedded model with TransformerLens).
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        if on_load is not None:
            on_load()
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
