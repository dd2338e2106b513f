"""Recipes and sweeps: grids over p x k x architecture, grouped by shared masked LLM pass, sharded over machines.

Python API: `load_recipe(path_or_name) -> Recipe`, `plan(recipe) -> list[Group]`,
`run_recipe(recipe_or_path, out_dir, shard=None, launcher="local", overrides=None) -> list[Path]`.
Command line: `sae-mask sweep RECIPE [--shard i/n] [--dry-run] [--launcher local|submitit]` (`main`).
Names load on first use, so the command line answers `--help` without importing SAELens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_mask_plugin.lazy import lazy_exports

if TYPE_CHECKING:
    from sae_mask_plugin.sweep.cli import main
    from sae_mask_plugin.sweep.execute import is_finished, run_recipe, run_shard, submit_shards, train_group
    from sae_mask_plugin.sweep.plan import Group, MemoryEstimate, format_plan, plan
    from sae_mask_plugin.sweep.recipe import RECIPES_DIR, Recipe, RecipeError, Run, SlurmSettings, load_recipe
    from sae_mask_plugin.sweep.shard import Shard, ShardSpecError

__all__ = [
    "RECIPES_DIR",
    "Group",
    "MemoryEstimate",
    "Recipe",
    "RecipeError",
    "Run",
    "Shard",
    "ShardSpecError",
    "SlurmSettings",
    "format_plan",
    "is_finished",
    "load_recipe",
    "main",
    "plan",
    "run_recipe",
    "run_shard",
    "submit_shards",
    "train_group",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "main": f"{__name__}.cli",
        **dict.fromkeys(
            ["is_finished", "run_recipe", "run_shard", "submit_shards", "train_group"], f"{__name__}.execute"
        ),
        **dict.fromkeys(["Group", "MemoryEstimate", "format_plan", "plan"], f"{__name__}.plan"),
        **dict.fromkeys(["Shard", "ShardSpecError"], f"{__name__}.shard"),
        **dict.fromkeys(
            ["RECIPES_DIR", "Recipe", "RecipeError", "Run", "SlurmSettings", "load_recipe"],
            f"{__name__}.recipe",
        ),
    },
)
