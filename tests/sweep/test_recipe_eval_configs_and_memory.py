"""Recipe `eval_configs` (per-eval config fields, checked before anything loads) and the dry run's memory terms."""

from __future__ import annotations

import pytest

from sae_mask_plugin.sweep.plan import GIB, duration, estimated_seconds, format_plan, pending_group, plan
from sae_mask_plugin.sweep.recipe import RecipeError, load_recipe


def test_eval_configs_reach_the_eval_configs_in_the_training_dtype():
    recipe = load_recipe(
        "paper_gemma2_2b",
        {
            "eval_configs": {
                "absorption": {"words_per_letter": 4},
                "core": {"n_eval_reconstruction_batches": 1},
            }
        },
    )
    settings = recipe.eval_settings()
    assert set(settings) == {"core", "absorption", "sparse_probing", "ood"}  # scr / tpp run through SAEBench
    assert settings["absorption"].words_per_letter == 4
    assert settings["core"].n_eval_reconstruction_batches == 1
    assert recipe.llm_dtype == "bfloat16"
    assert {config.llm_dtype for config in settings.values() if hasattr(config, "llm_dtype")} == {"bfloat16"}
    assert load_recipe("paper_pythia160m").eval_settings()["core"].llm_dtype == "float32"


@pytest.mark.parametrize(
    ("eval_configs", "message"),
    [
        ({"absorbtion": {"words_per_letter": 4}}, "did you mean absorption"),
        ({"absorption": {"words_per_leter": 4}}, "did you mean words_per_letter"),
        ({"absorption": {"words_per_letter": "many"}}, "eval_configs"),
        ({"core": 3}, "must be a mapping"),
    ],
)
def test_bad_eval_configs_fail_at_load(eval_configs, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("paper_pythia160m", {"eval_configs": eval_configs})


def test_memory_counts_the_cpu_load_copy_and_sae_steps_one_by_one():
    grid = [{"architecture": "matryoshka_batchtopk", "d_sae": 16384, "k": [8, 16], "p": 0.0}]
    on_gpu = load_recipe("paper_pythia160m", {"grid": grid})
    on_cpu = load_recipe(
        "paper_pythia160m", {"grid": grid, "runner.device": "cpu", "runner.llm_device": "cpu"}
    )
    (gpu_group,) = plan(on_gpu)
    (cpu_group,) = plan(on_cpu)
    gpu, cpu = gpu_group.memory(on_gpu), cpu_group.memory(on_cpu)
    assert gpu.llm_load == 0 and cpu.llm_load == pytest.approx(1.35 * cpu.llm)
    assert cpu.llm == pytest.approx(162_322_944 * 4 / GIB)
    assert cpu.total - gpu.total == pytest.approx(1.35 * cpu.llm)
    # Two SAEs of 16,384 x 768: Adam state 4 x 4 bytes per parameter each; latents in bfloat16 under autocast,
    # 2 kept per SAE and 2 more for the SAE stepping, for 4,096 tokens.
    state = 2 * 4 * 4 * (2 * 768 * 16384 + 16384 + 768)
    latents = (2 * 2 + 2) * 4096 * 16384 * 2
    assert gpu.saes == pytest.approx((state + latents) / GIB)
    no_autocast = load_recipe("paper_pythia160m", {"grid": grid, "runner.autocast": False})
    (group,) = plan(no_autocast)
    assert group.memory(no_autocast).saes == pytest.approx((state + 2 * latents) / GIB)


THROUGHPUT = {
    "machine": "test machine",
    "llm_tokens_per_s": 1000.0,
    "sae_tokens_per_s": 4000.0,
    "eval_seconds_first": 300.0,
    "eval_seconds_each": 60.0,
}


def test_dry_run_estimates_the_time_from_the_recipe_throughput():
    grid = [
        {"architecture": "matryoshka_batchtopk", "d_sae": 1024, "k": [16, 32], "p": [0.0, 0.3], "seed": 0}
    ]
    recipe = load_recipe(
        "cpu_demo_quick",
        {
            "grid": grid,
            "training_tokens": 100_000,
            "runner.calibration_tokens": 20_000,
            "llm_dtype": "float32",
            "throughput": {"float32": THROUGHPUT},
        },
    )
    groups = plan(recipe)
    training, evals = estimated_seconds(recipe, groups)
    # two groups: (100k + 20k calibration) / 1000 LLM + 2 SAEs x 100k / 4000; evals 300 + 3 x 60
    assert training == pytest.approx(2 * (120 + 50))
    assert evals == pytest.approx(300 + 3 * 60)
    text = format_plan(recipe, groups)
    assert "estimated time on a test machine (float32): ~14 min (training ~6 min, evals ~8 min" in text
    assert "on a machine running nothing else)" in text  # a shared machine runs slower
    first = groups[0].runs[0].name
    remaining = format_plan(recipe, groups, is_done=lambda run: run.name == first)
    assert "estimated time still to run" in remaining
    assert estimated_seconds(
        recipe, [pending_group(groups[0], lambda run: run.name == first), groups[1]]
    ) == (
        pytest.approx(2 * 120 + 3 * 25),
        pytest.approx(300 + 2 * 60),
    )
    # the first group trained, one of its SAEs not yet evaluated: no training left there, one SAE's evals
    trained = {run.name for run in groups[0].runs}
    awaiting = format_plan(
        recipe,
        groups,
        is_done=lambda run: run.name in trained,
        is_evaluated=lambda run: run.name != first,
    )
    assert f"{first}  [trained; evals to run]" in awaiting and f"{groups[0].runs[1].name}  [done]" in awaiting
    assert estimated_seconds(recipe, [groups[1]], evaluate_only=1) == (
        pytest.approx(120 + 50),
        pytest.approx(300 + 2 * 60),
    )
    assert "~10 min (training ~3 min, evals ~7 min" in awaiting
    assert "estimated time" not in format_plan(load_recipe("cpu_demo_quick", {"throughput": None}), groups)
    only_bf16 = load_recipe(
        "cpu_demo_quick", {"llm_dtype": "float32", "throughput": {"bfloat16": THROUGHPUT}}
    )
    assert (
        "no time estimate: the recipe's throughput is measured in bfloat16 only, not in float32"
        in format_plan(only_bf16, groups)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"llm_tokens_per_s": 0}, "llm_tokens_per_s must be a positive number"),
        ({"sae_tokens_per_s": "fast"}, "sae_tokens_per_s must be a positive number"),
        ({"eval_seconds_each": -1}, "eval_seconds_each must be a number >= 0"),
        ({"tokens_per_s": 3}, "did you mean"),
    ],
)
def test_bad_throughput_fails_at_load(change, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("cpu_demo_quick", {"throughput": {"float32": {**THROUGHPUT, **change}}})
    with pytest.raises(RecipeError, match="throughput"):
        load_recipe("cpu_demo_quick", {"throughput": {"float16": THROUGHPUT}})


def test_a_local_run_prints_one_line_per_stage_with_the_time_left() -> None:
    from sae_mask_plugin.sweep.plan import progress_line

    recipe = load_recipe("cpu_demo_quick")
    groups = plan(recipe)
    first = progress_line(recipe, groups, 0, "training and calibration", 0.0)
    assert first.startswith(
        "[cpu_demo_quick] group 1/2 p0-s0 (2 SAEs): training and calibration; 0 min so far, ~"
    )
    assert "group 2/2 p0.3-token-s0 (1 SAE): evals" in progress_line(recipe, groups, 1, "evals", 0.0)
    training, evals = estimated_seconds(recipe, groups)
    assert f"~{duration(training + evals)} left" in first
    later = progress_line(recipe, groups, 1, "evals", 600.0)
    assert "group 2/2" in later and "10 min so far" in later
    left = [float(line.split("~")[1].split(" min")[0]) for line in (first, later)]
    assert left[1] < left[0]
    assert (
        progress_line(recipe, groups, 2, "report", 900.0)
        == "[cpu_demo_quick] every group done: the report; 15 min so far"
    )


def test_dry_run_warns_of_a_poorly_mixed_buffer():
    well_mixed = load_recipe("smollm2_absorption_arm_v2")
    assert "warning: SAELens's mixing buffer" not in format_plan(well_mixed, plan(well_mixed))
    first_run = load_recipe("smollm2_absorption_arm")
    assert (
        "warning: SAELens's mixing buffer holds n_batches_in_buffer x 126 positions = 4,032 activations"
        in format_plan(first_run, plan(first_run))
    )
