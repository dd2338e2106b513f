"""Lazy public names for packages (PEP 562): a package's names load on first use, so importing one of its light
modules (a command line, a config) does not pay for torch, SAELens or TransformerLens."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], on_load: Callable[[], None] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`, whose public name `n` lives in module `exports[n]`.

    `on_load` runs after each first load of a name (e.g. to register the embedded model with TransformerLens).
    A public name that is also a submodule's name (`sweep.plan`, the function of `sweep/plan.py`) keeps naming
    the function once the submodule is imported, as an eager `from .plan import plan` would.
    """
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        if on_load is not None:
            on_load()
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(exports))

    class LazyPackage(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if isinstance(value, types.ModuleType) and exports.get(name) == value.__name__:
                value = getattr(value, name)  # the import system binding a submodule over a public name
            super().__setattr__(name, value)

    module.__class__ = LazyPackage
    return __getattr__, __dir__
