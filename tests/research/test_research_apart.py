"""Research stays apart from the package: no module of `sae_mask_plugin` imports `research` (the wheel does not
ship it), and every research module imports on its own from the repository root, as `python -m research.X` runs it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sae_mask_plugin

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def test_no_module_of_the_package_imports_research():
    package = Path(sae_mask_plugin.__file__).parent
    offenders = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if any(name == "research" or name.startswith("research.") for name in _imported_modules(path))
    ]
    assert not offenders


def test_every_research_module_imports_from_the_repository_root():
    names = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "research").rglob("*.py")
        if path.name != "__main__.py"
    )
    assert "research.absorption_control.report" in names and "research.study_pages" in names
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)",
            *names,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
