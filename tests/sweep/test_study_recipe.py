"""The study's second-edition recipe: its grid has the seeds and arms the study needs (every shard a complete
pair), its core eval reads enough tokens, the demo's CPU preset is left as it was, its dry run estimates the time
on any CPU, and the `loss_positions: unmasked` arm becomes a comparison cell of its own. No model is loaded."""

from __future__ import annotations

from collections import Counter

from sae_mask_plugin.report.matching import cell_name
from sae_mask_plugin.report.records import RunRecord
from sae_mask_plugin.sweep import Shard, load_recipe, main, plan

STUDY = "smollm2_study_v2"
SHARDS = 5
"""The study runs as `--shard i/5` (the recipe's header)."""


def test_the_study_grid_has_five_paired_seeds_at_two_k_and_three_seeds_for_the_other_arms() -> None:
    recipe = load_recipe(STUDY)
    seeds = Counter()
    for run in recipe.runs:
        seeds[(run.masking.p, run.masking.loss_positions, run.sae.k)] += 1
    masked_ks = {run.sae.k for run in recipe.runs if run.masking.p > 0}
    baseline_ks = {run.sae.k for run in recipe.runs if run.masking.p == 0}
    assert len(masked_ks) >= 2
    # a lower baseline k brackets the masked SAEs' L0 from below, and gives the quadratic interpolation 3 points
    assert len(baseline_ks) >= 3 and min(baseline_ks) < min(masked_ks) and max(baseline_ks) >= max(masked_ks)
    for k in masked_ks:
        assert seeds[(0.0, "all", k)] >= 5 and seeds[(0.3, "all", k)] >= 5
        assert seeds[(0.1, "all", k)] >= 3 and seeds[(0.5, "all", k)] >= 3
        assert seeds[(0.3, "unmasked", k)] >= 3
    # the baselines and masked SAEs of a seed share its data order: every masked seed has its baseline
    baseline_seeds = {run.seed for run in recipe.runs if run.masking.p == 0}
    assert {run.seed for run in recipe.runs} <= baseline_seeds
    for group in plan(recipe):
        assert {run.sae.k for run in group.runs} == (baseline_ks if group.masking.p == 0 else masked_ks)


def test_every_shard_of_the_study_holds_a_complete_pair() -> None:
    groups = plan(load_recipe(STUDY))
    for index in range(SHARDS):
        share = Shard(index, SHARDS).select(groups)
        baselines = {group.seed for group in share if group.masking.p == 0}
        masked = {
            group.seed for group in share if group.masking.p == 0.3 and group.masking.loss_positions == "all"
        }
        assert baselines and baselines == masked


def test_the_study_core_eval_reads_enough_tokens_and_the_demo_enough_to_count_latents_alive() -> None:
    core = load_recipe(STUDY).eval_settings()["core"]
    trained_per_window = core.context_size - 2  # seqpos_slice [2, None]; the BOS between texts costs ~0.3 %
    assert (
        core.batch_size_prompts * core.n_eval_sparsity_variance_batches * trained_per_window >= 100_000 * 1.01
    )
    assert core.batch_size_prompts * core.n_eval_reconstruction_batches * trained_per_window >= 20_000 * 1.01
    assert core.exclude_untrained_positions
    demo = load_recipe("cpu_demo_quick").eval_settings()["core"]
    # the demo's L0 / EV / alive read 32 x 8 windows (4 x 8 counted a latent alive only within ~4,000 tokens);
    # CE loss recovered stays at the CPU preset's 2 x 8
    assert (demo.n_eval_sparsity_variance_batches, demo.n_eval_reconstruction_batches) == (32, 2)


def test_the_study_dry_run_plans_every_arm(capsys, tmp_path) -> None:
    assert main([STUDY, "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "group p0.3-token-loss_positions_unmasked-s2" in out and "estimated time" in out
    assert "AuxK" not in out  # its dead-latent window is shorter than its runs


def test_a_dry_run_says_when_auxk_never_starts(capsys, tmp_path) -> None:
    assert main(["cpu_demo_quick", "--dry-run", "--out", str(tmp_path)]) == 0
    assert "AuxK" not in capsys.readouterr().out  # the demo sets its window to a tenth of its steps
    overrides = ["--set", "runner.dead_feature_window=1000"]
    assert main(["cpu_demo_quick", "--dry-run", "--out", str(tmp_path), *overrides]) == 0
    assert "warning: dead_feature_window = 1000 steps is not shorter than the run" in capsys.readouterr().out


def _record(loss_positions: str) -> RunRecord:
    return RunRecord(
        name=f"run-{loss_positions}",
        sae_path="/nowhere",
        model_name="m",
        hook_name="h",
        architecture="matryoshka_batchtopk",
        d_sae=2048,
        k=32,
        seed=0,
        training_tokens=1000,
        mask_p=0.3,
        mask_strategy="token",
        mask_token="<filename>",
        loss_positions=loss_positions,
    )


def test_the_unmasked_loss_arm_is_a_comparison_cell_of_its_own() -> None:
    assert cell_name(_record("all")) == "p=0.3 token | matryoshka_batchtopk w2048 k32"
    assert cell_name(_record("unmasked")) == "p=0.3 token unmasked-loss | matryoshka_batchtopk w2048 k32"
