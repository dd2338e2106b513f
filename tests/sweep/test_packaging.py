"""The wheel ships the recipes, so `sae-mask sweep NAME` and `sae-mask demo` work from a plain `pip install`, and
the snapshot of SAELens's flags that `sae-mask train` answers `--help` and bad input from; it leaves `research/` out."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from sae_mask_plugin.sweep import RECIPES_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_every_recipe_and_the_train_flags(tmp_path: Path) -> None:
    source = tmp_path / "source"  # pip builds inside the source tree: build a copy, keep the checkout clean
    for name in ("sae_mask_plugin", "recipes", "research"):
        shutil.copytree(
            REPO_ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q"],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("sae_mask_plugin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {name for name in names if name.startswith("sae_mask_plugin/recipes/")}
    expected = {f"sae_mask_plugin/recipes/{path.name}" for path in (REPO_ROOT / "recipes").glob("*.yaml")}
    assert len(expected) >= 6
    assert shipped == expected
    assert "sae_mask_plugin/training/flags.json" in names
    assert not [name for name in names if name.startswith("research/")]  # research stays in the repository


def test_recipes_dir_is_the_top_level_folder() -> None:
    assert RECIPES_DIR.resolve() == (REPO_ROOT / "recipes").resolve()
