"""Every module of the package imports first, on its own: no import cycle hides behind a lucky import order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sae_mask_plugin

# One interpreter keeps torch, SAELens and SAEBench loaded between modules (they cannot loop back into ours), and
# forgets every module of this package before the next import, as a fresh process would.
FRESH_IMPORT_OF_EACH_MODULE = """
import importlib, sys, traceback
failures = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "sae_mask_plugin" or m.startswith("sae_mask_plugin.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failures.append(name + "\\n" + traceback.format_exc(limit=-3))
print("\\n\\n".join(failures))
sys.exit(1 if failures else 0)
"""


def package_modules() -> list[str]:
    root = Path(sae_mask_plugin.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_package_modules_are_found():
    modules = package_modules()
    assert "sae_mask_plugin.calibration.threshold" in modules
    assert "sae_mask_plugin.training" in modules
    assert len(modules) > 40


def test_every_module_imports_first_in_a_fresh_package():
    result = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORT_OF_EACH_MODULE, *package_modules()],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
