"""Every module of the package imports first, on its own: no import cycle hides behind a lucky import order; and no
import loops at all, read from the source: no subpackage imports one that imports it back, nor a module one that
imports it back, at module level or inside a function."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import sae_mask_plugin

PACKAGE_ROOT = Path(sae_mask_plugin.__file__).parent

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


@dataclass(frozen=True)
class Import:
    """One import statement of a package module that names another package module."""

    importer: str
    imported: str
    path: str
    line: int


def _module_names(root: Path) -> dict[str, tuple[Path, bool]]:
    """Every module under the package folder `root`: dotted name -> (file, whether it is a package's __init__)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        names[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return names


def package_imports(root: Path) -> list[Import]:
    """The imports between modules of the package folder `root`, wherever they are written (module level, in a
    function, in an `if TYPE_CHECKING:` block). `from a.b import c` names module `a.b.c` when there is one, else
    `a.b`; a relative import is resolved against its module's package."""
    modules = _module_names(root)
    package = root.name
    imports = []
    for module, (path, is_package) in modules.items():
        parent = module.split(".") if is_package else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*parent[: len(parent) - node.level + 1], *([base] if base else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            imports += [
                Import(module, target, str(path.relative_to(root.parent)), node.lineno)
                for target in dict.fromkeys(targets)
                if target in modules and target != module and target.split(".")[0] == package
            ]
    return imports


def subpackage(module: str) -> str:
    """The node of `module` in the subpackage graph: `sae_mask_plugin.training` for every module of `training`; a
    top-level module (`sae_mask_plugin.errors`) and the package's own `__init__` are nodes of their own."""
    return ".".join(module.split(".")[:2])


def import_cycles(imports: list[Import], node=lambda module: module) -> list[list[Import]]:
    """One cycle of imports for each strongly connected set of nodes (`node(module)`) that import one another."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        source, target = node(imp.importer), node(imp.imported)
        if source != target:
            graph.setdefault(source, {}).setdefault(target, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(vertex: str) -> None:  # Tarjan's strongly connected components
        index[vertex] = low[vertex] = len(index)
        stack.append(vertex)
        for successor in graph.get(vertex, {}):
            if successor not in index:
                visit(successor)
                low[vertex] = min(low[vertex], low[successor])
            elif successor in stack:
                low[vertex] = min(low[vertex], index[successor])
        if low[vertex] == index[vertex]:
            component: set[str] = set()
            while vertex not in component:
                component.add(stack.pop())
            if len(component) > 1:
                components.append(component)

    for vertex in sorted(graph):
        if vertex not in index:
            visit(vertex)
    return [_one_cycle(graph, component) for component in components]


def _one_cycle(graph: dict[str, dict[str, Import]], component: set[str]) -> list[Import]:
    """A shortest cycle through the smallest node of `component`, as the imports along it."""
    start = min(component)
    paths: dict[str, list[Import]] = {start: []}
    frontier = [start]
    while frontier:
        vertex = frontier.pop(0)
        for successor, imp in sorted(graph[vertex].items()):
            if successor == start:
                return [*paths[vertex], imp]
            if successor in component and successor not in paths:
                paths[successor] = [*paths[vertex], imp]
                frontier.append(successor)
    raise AssertionError(f"no cycle through {start} in {component}")


def describe(cycle: list[Import], node=lambda module: module) -> str:
    """`a -> b -> a`, then the import that makes each step."""
    names = " -> ".join([node(cycle[0].importer), *(node(imp.imported) for imp in cycle)])
    steps = "".join(f"\n    {imp.path}:{imp.line} imports {imp.imported}" for imp in cycle)
    return names + steps


def test_subpackages_import_no_subpackage_that_imports_them_back():
    cycles = import_cycles(package_imports(PACKAGE_ROOT), subpackage)
    assert not cycles, "subpackages import one another (move what they share below both):\n" + "\n".join(
        describe(cycle, subpackage) for cycle in cycles
    )


def test_modules_import_no_module_that_imports_them_back():
    cycles = import_cycles(package_imports(PACKAGE_ROOT))
    assert not cycles, "modules import one another:\n" + "\n".join(describe(cycle) for cycle in cycles)


def test_cycles_are_found_through_function_level_and_relative_imports(tmp_path):
    """The check itself: a loop closed by an import inside a function, through a relative import, is reported
    with the file and line of each import."""
    package = tmp_path / "pkg"
    for folder in ("low", "high"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "low" / "util.py").write_text("def use():\n    from pkg.high import tool\n    return tool\n")
    (package / "high" / "tool.py").write_text("from ..low.util import use\n")
    (package / "high" / "other.py").write_text("from . import tool\n")
    imports = package_imports(package)
    assert Import("pkg.high.other", "pkg.high.tool", "pkg/high/other.py", 1) in imports
    [cycle] = import_cycles(imports, subpackage)
    assert describe(cycle, subpackage) == (
        "pkg.high -> pkg.low -> pkg.high"
        "\n    pkg/high/tool.py:1 imports pkg.low.util"
        "\n    pkg/low/util.py:2 imports pkg.high.tool"
    )
    [module_cycle] = import_cycles(imports)
    assert {imp.importer for imp in module_cycle} == {"pkg.high.tool", "pkg.low.util"}


def test_calibration_imports_no_training_nor_evals_and_masking_no_training():
    """Calibration is a layer below training (the runners calibrate the SAEs they save), so it imports neither
    `training` nor `evals`; the masking command checks hooks with `embedded.model`, not with the training
    preflight; and the layers form no loop."""
    imports = package_imports(PACKAGE_ROOT)
    crossings = [
        f"{imp.path}:{imp.line} imports {imp.imported}"
        for imp in imports
        if (subpackage(imp.importer), subpackage(imp.imported))
        in {
            ("sae_mask_plugin.calibration", "sae_mask_plugin.training"),
            ("sae_mask_plugin.calibration", "sae_mask_plugin.evals"),
            ("sae_mask_plugin.masking", "sae_mask_plugin.training"),
        }
    ]
    assert not crossings, "\n".join(crossings)
    assert ("sae_mask_plugin.training", "sae_mask_plugin.calibration") in {
        (subpackage(imp.importer), subpackage(imp.imported)) for imp in imports
    }
    assert not import_cycles(imports, subpackage)
