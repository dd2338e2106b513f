"""Bad recipes and shard specs fail at load / dry-run time with one clear message each."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sae_mask_plugin.sweep import Recipe, RecipeError, Shard, ShardSpecError, load_recipe, main, plan


def _recipe(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "tiny",
        "model_name": "SmolLM2-135M-Instruct",
        "hook_name": "blocks.1.hook_resid_post",
        "d_in": 576,
        "training_tokens": 8192,
        "runner": {"train_batch_size_tokens": 2048},  # SAELens's default 4,096 overfills its default buffer
        "grid": {"architecture": "batchtopk", "d_sae": 256, "k": 16, "p": [0.0, 0.3]},
    }
    data.update(changes)
    return data


def _error(**changes: Any) -> str:
    with pytest.raises(RecipeError) as info:
        Recipe.from_dict(_recipe(**changes))
    return str(info.value)


def test_a_valid_recipe_loads() -> None:
    recipe = Recipe.from_dict(_recipe())
    assert [run.name for run in recipe.runs] == [
        "batchtopk-k16-w256-p0-s0",
        "batchtopk-k16-w256-p0.3-token-s0",
    ]
    assert [group.name for group in plan(recipe)] == ["p0-s0", "p0.3-token-s0"]


def test_a_mixing_buffer_smaller_than_a_batch_is_refused_at_load() -> None:
    """SAELens's own defaults (20 batches x 128 positions < 4,096 tokens) would fail only after the model loads;
    the plan (and so the dry run) refuses them."""
    recipe = Recipe.from_dict(_recipe(runner={}))
    with pytest.raises(RecipeError, match=r"group p0-s0: .* 20 x 128 = 2560 activations, .* >= 32"):
        plan(recipe)


def test_unknown_architecture_names_the_known_ones() -> None:
    message = _error(grid={"architecture": "batchtopkk", "d_sae": 256, "k": 16})
    assert "unknown 'batchtopkk'" in message and "did you mean batchtopk" in message
    message = _error(grid={"architecture": "masked_topk", "d_sae": 256})
    assert "matryoshka_batchtopk" in message and "jumprelu" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"trainig_tokens": 5}, "recipe: unknown 'trainig_tokens'; did you mean training_tokens"),
        ({"runner": {"lr_rate": 1e-3}}, "runner: unknown 'lr_rate'"),
        ({"runner": {"model_name": "gpt2"}}, "runner: unknown 'model_name'"),
        ({"masking": {"stratgy": "span"}}, "masking: unknown 'stratgy'; did you mean strategy"),
        (
            {"sae": {"k": 16}, "grid": {"architecture": ["topk", "standard"], "d_sae": 256}},
            "sae (for standard)",
        ),
        ({"grid": {"architecture": "standard", "d_sae": 256, "k": 16}}, "grid block 0: unknown 'k'"),
        ({"sae_by_architecture": {"gated": {"l1_coefficient": 2.0}}}, "sae_by_architecture: unknown 'gated'"),
        ({"slurm": {"partitoin": "gpu"}}, "slurm: unknown 'partitoin'"),
        ({"evals": ["absorbtion"]}, "evals: unknown 'absorbtion'"),
        ({"grid": {"architecture": "batchtopk", "d_sae": 256, "p": 1.5}}, "masking.p must be a probability"),
        ({"grid": {"architecture": "batchtopk", "k": 16}}, "d_sae"),
        ({"d_in": 0}, "d_in must be a positive integer"),
        ({"name": "a/b"}, "folder-safe"),
        ({"grid": []}, "at least one block"),
    ],
)
def test_bad_fields_are_clear_errors(changes: dict[str, Any], expected: str) -> None:
    assert expected in _error(**changes)


def test_duplicate_runs_are_an_error() -> None:
    message = _error(grid={"architecture": "batchtopk", "d_sae": 256, "k": 16, "p": [0.3, 0.3]})
    assert "duplicate run 'batchtopk-k16-w256-p0.3-token-s0'" in message
    # At p = 0 the strategy is void: two strategies give the same baseline twice.
    message = _error(
        grid={"architecture": "batchtopk", "d_sae": 256, "k": 16, "p": 0.0, "strategy": ["token", "span"]}
    )
    assert "duplicate run 'batchtopk-k16-w256-p0-s0'" in message and "baselines in one block" in message
    blocks = [
        {"architecture": "batchtopk", "d_sae": 256, "k": [16, 32]},
        {"architecture": "batchtopk", "d_sae": 256, "k": 32},
    ]
    assert "grid block 0 and grid block 1" in _error(grid=blocks)


def test_bad_runner_values_fail_when_planning() -> None:
    recipe = Recipe.from_dict(_recipe(runner={"logger": {"log_to_wandb": False, "wandb_projekt": "x"}}))
    with pytest.raises(RecipeError, match="runner settings of group p0-s0"):
        plan(recipe)


@pytest.mark.parametrize("spec", ["3/2", "2/2", "0/0", "-1/2", "1", "a/b", "1/2/3"])
def test_bad_shard_specs(spec: str) -> None:
    with pytest.raises(ShardSpecError):
        Shard.parse(spec)


def test_shards_partition_the_plan_deterministically() -> None:
    recipe = load_recipe("cpu_demo_full")
    groups = plan(recipe)
    shares = [Shard.parse(f"{i}/5").select(groups) for i in range(5)]
    names = [group.name for share in shares for group in share]
    assert sorted(names) == sorted(group.name for group in groups) and len(set(names)) == len(groups)
    assert shares == [Shard(i, 5).select(plan(load_recipe("cpu_demo_full"))) for i in range(5)]


def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_recipe(grid={"architecture": "nope", "d_sae": 256})))
    assert main([str(path), "--dry-run"]) == 2
    assert "sae-mask sweep: grid block 0 architecture: unknown 'nope'" in capsys.readouterr().err
    assert main(["cpu_demo_quick", "--dry-run", "--shard", "3/2"]) == 2
    assert "shard 3/2 does not exist" in capsys.readouterr().err
    assert main(["no_such_recipe", "--dry-run"]) == 2
    assert "shipped recipes: " in capsys.readouterr().err
    assert main(["cpu_demo_quick", "--dry-run", "--set", "runner.devise=cpu"]) == 2
    assert "runner: unknown 'devise'; did you mean device" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"absorption_letter_set": {"letters": ""}},
            "absorption_letter_set: letters must be a non-empty string",
        ),
        ({"absorption_letter_set": {}}, "absorption_letter_set: a letter-set rule sets exactly one of"),
        ({"absorption_letter_set": {"min_baseline_seeds": 2, "letterz": "ab"}}, "letterz"),
        (
            {"absorption_letter_set": {"min_baseline_seeds": 1}, "evals": ["core"]},
            "needs the absorption eval",
        ),
        (
            {"absorption_letter_set": {"min_baseline_seeds": 2}, "evals": ["absorption"]},
            "batchtopk w256 k16 has 1 baseline seed(s) in the grid",
        ),
    ],
)
def test_an_absorption_letter_set_that_cannot_be_fixed_is_refused_at_load(
    changes: dict[str, Any], expected: str
) -> None:
    assert expected in _error(**changes)


def test_a_letter_set_rule_the_grid_can_fix_loads() -> None:
    grid = {"architecture": "batchtopk", "d_sae": 256, "k": 16, "p": [0.0, 0.3], "seed": [0, 1]}
    recipe = Recipe.from_dict(
        _recipe(grid=grid, evals=["absorption"], absorption_letter_set={"min_baseline_seeds": 2})
    )
    assert recipe.absorption_letter_set is not None
    assert recipe.absorption_letter_set.min_baseline_seeds == 2
