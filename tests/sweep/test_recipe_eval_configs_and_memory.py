"""Recipe `eval_configs` (per-eval config fields, checked before anything loads) and the dry run's memory terms."""

from __future__ import annotations

import pytest

from sae_mask_plugin.sweep.plan import GIB, plan
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
