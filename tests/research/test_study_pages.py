"""The study pages' generated blocks (regenerated here from results.json and compared), the readings the study
pages give the numbers, and the absorption headline's absence."""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import pytest
from report_checks import run_record

from research.study_pages import (
    absorption_headline_absence,
    arm_blocks,
    block_names,
    fill_blocks,
    generated_blocks,
    records_from_results,
)
from sae_mask_plugin.report.build import build_report, collect_report_data
from sae_mask_plugin.report.records import DUPLICATE_METRICS

ROOT = Path(__file__).resolve().parents[2]
SECOND_EDITION = ROOT / "docs" / "smollm2_study"
FIRST_EDITION = SECOND_EDITION / "first_edition"
ARM = SECOND_EDITION / "absorption_arm"
# each doc with generated blocks: the results.json they are generated from, and whether as the absorption arm's
GENERATED_DOCS = [
    (FIRST_EDITION / "README.md", FIRST_EDITION / "results.json", False),
    (SECOND_EDITION / "README.md", SECOND_EDITION / "results.json", False),
    (ROOT / "README.md", SECOND_EDITION / "results.json", False),
    (ROOT / "docs" / "study.md", SECOND_EDITION / "results.json", False),
    (ARM / "README.md", ARM / "results.json", True),
    (SECOND_EDITION / "README.md", ARM / "results.json", True),
    (ROOT / "README.md", ARM / "results.json", True),
]


@functools.cache
def blocks_from(results_path: Path, arm: bool = False) -> dict[str, str]:
    results = json.loads(results_path.read_text())
    return arm_blocks(results) if arm else generated_blocks(results)


@pytest.fixture(scope="module")
def first_edition() -> dict:
    return json.loads((FIRST_EDITION / "results.json").read_text())


@pytest.fixture(scope="module")
def first_edition_blocks() -> dict[str, str]:
    return blocks_from(FIRST_EDITION / "results.json")


@pytest.mark.parametrize(
    ("path", "results", "arm"),
    GENERATED_DOCS,
    ids=[f"{path.relative_to(ROOT)}<-{results.relative_to(ROOT)}" for path, results, _ in GENERATED_DOCS],
)
def test_generated_blocks_in_the_docs_are_regenerated_from_results_json(path: Path, results: Path, arm: bool):
    text = path.read_text()
    blocks = blocks_from(results, arm)
    assert set(blocks) & set(block_names(text)), f"{path} has none of the blocks of {results}"
    assert fill_blocks(text, blocks, keep_others=True) == text, (
        f"{path} is stale: python -m research.study_statements {results.relative_to(ROOT)}"
        f"{' --arm' if arm else ''} --update {path.relative_to(ROOT)}"
    )


def test_a_block_without_a_generator_is_an_error_unless_kept():
    text = "a\n<!-- begin generated: x -->\nold\n<!-- end generated: x -->\n<!-- begin generated: y -->\nkept\n<!-- end generated: y -->\n"
    with pytest.raises(ValueError, match="no generator for the blocks y"):
        fill_blocks(text, {"x": "new"})
    assert fill_blocks(text, {"x": "new"}, keep_others=True) == text.replace("old", "new")


def test_the_study_readme_carries_its_generated_tables():
    assert block_names((FIRST_EDITION / "README.md").read_text()) == ["study-tables"]


def test_the_first_editions_statements_come_out_as_its_numbers_say(first_edition, first_edition_blocks):
    found = first_edition_blocks["what-we-found"]
    # FDR per view, each finding once (MSE and oracle − SAE OOD acc left out): at matched L0 only the alive
    # fraction at k 64 survives; at the same k, L0 and the alive fraction at k 16 and k 64, and L0 at k 32
    assert "matched L0, 24 tests: 1 survives (alive fraction at p=0.3 k64); " in found
    assert (
        "same k, 39 tests: 5 survive (L0 at p=0.3 k16, alive fraction at p=0.3 k16, L0 at p=0.3 k32, "
        "L0 at p=0.3 k64, alive fraction at p=0.3 k64)" in found
    )
    # the alive-fraction cost is an effect of each interval, after FDR at matched L0 only at k 64
    alive = next(line for line in found.splitlines() if line.startswith("- **alive fraction"))
    assert alive.count("masked lower (worse) (not after FDR)") == 1
    # the k 32 absorption bound holds under both interpolations only as the quadratic's wider 0.026, on 2 dof
    absorption = next(line for line in found.splitlines() if line.startswith("- **mean absorption"))
    assert (
        "[−0.017, +0.045] ([−0.026, +0.045]) decided: no reduction beyond 0.026 and no increase beyond 0.045"
        in absorption
    )
    assert "3 paired seeds (2 dof)" in found
    ev = next(line for line in found.splitlines() if line.startswith("- **explained variance"))
    assert "[−0.015, −0.002] ([−0.017, +0.001]) depends on interpolation" in ev
    # the p curve is seed-matched: seed 0's own p 0.3 pair (absorption −0.017 at k 64) beside p 0.1 and 0.5
    tables = first_edition_blocks["study-tables"]
    assert "| 0.3 (seed 0) | +0.007 / −0.017 |" in tables
    assert "| 0.3 (mean of 3 paired seeds) | +0.014 [−0.017, +0.045] / +0.026 [−0.069, +0.121] |" in tables
    assert records_from_results(first_edition)[0].name == first_edition["runs"][0]["name"]


def test_the_first_edition_predates_the_absorption_headline_and_says_so(first_edition_blocks):
    label = "**absorption: k = 1 full-absorption rate (gated letters) (lower better)**"
    assert f"- {label}: not computed" in first_edition_blocks["what-we-found"]
    assert (
        "| absorption: k = 1 full-absorption rate (gated letters) (lower better) | not computed | not computed |"
        in (first_edition_blocks["study-tables"])
    )


def test_the_absorption_headline_is_absent_as_not_measurable_or_not_computed():
    gate = {"absorption_letters_needed": 20}
    few = run_record(0.0, 0, absorption_letters_passing=4, **gate)
    enough_without_k1 = run_record(
        0.3, 0, absorption_letters_passing=22, gated_absorption_fraction_score=0.4, **gate
    )
    with_k1 = run_record(0.3, 1, absorption_letters_passing=22, gated_k1_full_absorption_score=0.2, **gate)
    assert absorption_headline_absence([few]) == "absorption not measurable here"
    assert absorption_headline_absence([few, enough_without_k1]) == "not computed"
    assert (
        absorption_headline_absence([run_record(0.0, 0, mean_absorption_fraction_score=0.7)])
        == "not computed"
    )
    assert absorption_headline_absence([few, with_k1]) is None


def test_the_first_editions_report_opens_with_its_superseded_notice(first_edition):
    report = (FIRST_EDITION / "report.md").read_text()
    assert report.startswith("> **First edition, superseded.**")
    assert first_edition["notices"] and first_edition["notices"][0].startswith(
        "**First edition, superseded.**"
    )
    data = collect_report_data(records_from_results(first_edition))
    assert len(first_edition["matched_l0_comparisons"]) == len(data.matched)


def test_the_p_curve_has_intervals_over_shared_seeds_and_a_loss_variant_gets_its_own_table(tmp_path):
    records = []
    for seed, offset in enumerate((0.0, 0.004, -0.003)):
        for k, value in ((16, 0.60), (32, 0.80), (64, 0.84)):
            records.append(run_record(0, seed, k, l0=float(k), explained_variance=value))
        for p in (0.3, 0.5):
            records.append(run_record(p, seed, 32, l0=24.0, explained_variance=0.7 - p / 10 + offset))
        unmasked_loss = run_record(0.3, seed, 32, l0=24.0, explained_variance=0.75 + offset)
        records.append(
            replace(unmasked_loss, name=f"{unmasked_loss.name}-unmasked", loss_positions="unmasked")
        )
    records.append(run_record(0.3, 3, 32, l0=24.0, explained_variance=0.67))  # a fourth p 0.3 seed ...
    records += [
        run_record(0, 3, k, l0=float(k), explained_variance=0.8) for k in (16, 64)
    ]  # ... with baselines
    records.append(run_record(0.5, 4, 32, l0=24.0, explained_variance=0.6))  # a p 0.5 seed without baselines
    records += [
        run_record(p, seed, 64, l0=60.0, explained_variance=0.83) for p in (0.3, 0.5) for seed in (0, 1)
    ]
    records.append(run_record(0.3, 2, 64, l0=70.0, explained_variance=0.83))  # above its baselines' L0 range
    build_report(records, tmp_path)
    tables = generated_blocks(json.loads((tmp_path / "results.json").read_text()))["study-tables"]
    p_curve = tables[tables.index("The p curve") :].splitlines()
    rows = [line.split(" | ")[0] for line in p_curve if line.startswith("| 0.")]
    assert rows == ["| 0.3 (seeds 0, 1, 2)", "| 0.5 (seeds 0, 1, 2)", "| 0.3 (mean of 4 paired seeds)"]
    assert all("[" in line for line in p_curve if line.startswith("| 0."))  # every row has an interval
    # k 64: the p 0.3 SAE of seed 2 lies outside its baseline's L0 range, so those entries have 2 pairs, not 3
    p03 = next(line for line in p_curve if line.startswith("| 0.3 (seeds"))
    assert " / " in p03 and "(2 pairs)" in p03.split(" / ")[1]
    assert "pairs)" not in p03.split(" / ")[0]
    assert "explained variance (higher better), k 32" in p_curve[2]
    assert "mean absorption" not in tables  # no run has it: no column
    assert "masked (p=0.3 token unmasked-loss) − baseline at matched L0, 3 paired seeds (2 dof)" in tables


def test_a_loss_variant_with_single_pairs_only_says_so_without_an_intro(tmp_path):
    records = []
    for seed in (0, 1):
        records += [
            run_record(0, seed, k, l0=float(k), explained_variance=0.8 + k / 1000) for k in (16, 32, 64)
        ]
        records.append(run_record(0.3, seed, 32, l0=24.0, explained_variance=0.7))
    unmasked_loss = run_record(0.3, 0, 32, l0=24.0, explained_variance=0.75)
    records.append(replace(unmasked_loss, name=f"{unmasked_loss.name}-unmasked", loss_positions="unmasked"))
    build_report(records, tmp_path)
    tables = generated_blocks(json.loads((tmp_path / "results.json").read_text()))["study-tables"]
    assert "No cell of p=0.3 token unmasked-loss has two or more pairs." in tables
    assert "masked (p=0.3 token unmasked-loss) − baseline" not in tables


def test_cells_compared_with_a_baseline_below_the_training_gate_leave_the_headline(tmp_path):
    records = []
    for seed, offset in enumerate((0.0, 0.004, -0.003)):
        for k, value in ((16, 0.80), (32, 0.86), (64, 0.90)):  # the k 16 baseline is below the EV gate
            records.append(run_record(0, seed, k, l0=float(k), explained_variance=value, frac_alive=0.9))
        for p, k, l0 in ((0.3, 32, 24.0), (0.3, 64, 48.0), (0.5, 32, 30.0)):
            records.append(run_record(p, seed, k, l0=l0, explained_variance=0.82 + offset, frac_alive=0.9))
    data = collect_report_data(records)
    k32, k64 = "p=0.3 token | batchtopk w256 k32", "p=0.3 token | batchtopk w256 k64"
    # matched L0 reads the baseline interpolated to the masked L0: at 24, between k 16 and k 32, EV
    # 0.80 + 0.06 log2(1.5) = 0.835 is below the gate; at 30 (p 0.5) it is 0.854 and passes, though one of the
    # two baselines it is read from does not; at 48 it is 0.883
    assert data.below_gate["matched L0"] == {k32: ["run-p0.3-k32-s0", "run-p0.3-k32-s1", "run-p0.3-k32-s2"]}
    assert data.below_gate["same k"] == {}  # at the same k each masked run has a passing baseline
    assert data.headline_cells("matched L0") == [k64, "p=0.5 token | batchtopk w256 k32"]
    assert {row["cell"] for row in data.headline if row["view"] == "matched L0"} == set(
        data.headline_cells("matched L0")
    )
    report = build_report(records, tmp_path).report.read_text()
    headline = report[report.index("## Headline") : report.index("## Setup")]
    assert "| metric | p=0.3 k64 | p=0.5 k32 |" in headline
    assert (
        "Left out of this headline, the baseline they are compared with below the training gate" in headline
    )
    assert "p=0.3 k32 (run-p0.3-k32-s0, run-p0.3-k32-s1, run-p0.3-k32-s2)" in headline
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["below_training_gate"]["matched L0"] == data.below_gate["matched L0"]
    tables = generated_blocks(results)["study-tables"]
    assert "| metric | k32 (baselines below the training gate) | k64 |" in tables


@pytest.fixture(scope="module")
def second_edition() -> dict:
    return json.loads((SECOND_EDITION / "results.json").read_text())


def matched_cell(results: dict, condition: str, k: int) -> dict[str, dict]:
    """One matched-L0 cell of the second edition's grid, by metric."""
    cell = f"{condition} | matryoshka_batchtopk w4096 k{k}"
    return {c["metric"]: c for c in results["matched_l0_comparisons"][cell]}


def interval_excludes_zero(comparison: dict) -> bool:
    difference = comparison["difference"]
    return difference["low"] > 0 or difference["high"] < 0


def test_the_second_editions_reading_holds_against_its_numbers(second_edition):
    """The study page's "How to read it", each reading checked on results.json."""
    # the headline is k 32 and k 64: under the convergence gate every compared cell's baselines pass; under the
    # absolute EV 0.85 the edition ran with, k 32's would not
    assert second_edition["below_training_gate"] == {"matched L0": {}, "same k": {}}
    gate = second_edition["training_gate"]
    assert set(gate["plateau_explained_variance"]) == {
        "matryoshka_batchtopk w4096 k16",
        "matryoshka_batchtopk w4096 k32",
    }
    assert gate["ev_tolerance"] == 0.01 and gate["min_explained_variance"] == 0.85
    k32_baselines = [
        run
        for run in second_edition["runs"]
        if run["mask_p"] == 0 and run["k"] == 32 and run["seed"] is not None
    ]
    assert all(run["metrics"]["explained_variance"] < 0.85 for run in k32_baselines)
    for k in (32, 64):
        assert matched_cell(second_edition, "p=0.3 token", k)["explained_variance"]["baseline"]["n"] >= 5
    # absorption cannot be measured here
    records = records_from_results(second_edition)
    assert absorption_headline_absence(records) == "absorption not measurable here"
    # probing shows no gain: nothing survives FDR at either k; at k 64 no interval excludes zero, at k 32 only
    # sparse probing top-2 (lower)
    for k in (32, 64):
        masked = matched_cell(second_edition, "p=0.3 token", k)
        probing = [metric for metric in masked if metric.startswith(("sae_", "oracle_minus_sae_"))]
        assert len(probing) == 8, probing
        assert not any(masked[m]["q_value"] is not None and masked[m]["q_value"] < 0.05 for m in probing), k
        excluding = [m for m in probing if interval_excludes_zero(masked[m])]
        assert excluding == ([] if k == 64 else ["sae_top_2_test_accuracy"]), (k, excluding)
        if excluding:
            assert masked["sae_top_2_test_accuracy"]["difference"]["high"] < 0
    # the cost is real, survives FDR at both k, and grows from p 0.3 to p 0.5
    costs = ["explained_variance", "ce_loss_score", "frac_alive"]
    for k in (32, 64):
        masked = matched_cell(second_edition, "p=0.3 token", k)
        for metric in costs:
            assert masked[metric]["difference"]["high"] < 0 and masked[metric]["q_value"] < 0.05, (metric, k)
    for k in (32, 64):
        at_p03 = matched_cell(second_edition, "p=0.3 token", k)
        at_p05 = matched_cell(second_edition, "p=0.5 token", k)
        for metric in costs:
            assert at_p05[metric]["difference"]["mean"] < at_p03[metric]["difference"]["mean"], (metric, k)
    # the unmasked-loss arm keeps the alive fraction and pays explained variance: less than the default arm in
    # the mean at both k, with intervals apart at k 32 and overlapping at k 64 (3 seeds do not show it there)
    for k in (32, 64):
        unmasked_loss = matched_cell(second_edition, "p=0.3 token unmasked-loss", k)
        default = matched_cell(second_edition, "p=0.3 token", k)
        assert not interval_excludes_zero(unmasked_loss["frac_alive"]), k
        assert unmasked_loss["explained_variance"]["difference"]["high"] < 0, k
        smaller_cost, larger_cost = unmasked_loss["explained_variance"], default["explained_variance"]
        assert larger_cost["difference"]["mean"] < smaller_cost["difference"]["mean"], k
        apart = larger_cost["difference"]["high"] < smaller_cost["difference"]["low"]
        assert apart == (k == 32), k
    # each finding once: MSE and oracle − SAE OOD acc carry no q-value (outside the FDR family)
    for comparison in matched_cell(second_edition, "p=0.3 token", 64).values():
        assert (comparison["q_value"] is None) == (comparison["metric"] in DUPLICATE_METRICS)


def test_the_second_edition_has_five_seeds_per_arm_at_two_k_and_the_core_evals_token_counts(second_edition):
    seeds: dict[tuple[float, int], set[int]] = {}
    for run in second_edition["runs"]:
        if run["loss_positions"] == "all":
            seeds.setdefault((run["mask_p"], run["k"]), set()).add(run["seed"])
        assert run["metrics"]["total_tokens_eval_sparsity_variance"] >= 100_000, run["name"]
        assert run["metrics"]["total_tokens_eval_reconstruction"] >= 20_000, run["name"]
    for p in (0.0, 0.3):
        assert [k for k in (16, 32, 64) if len(seeds.get((p, k), ())) >= 5] in ([32, 64], [16, 32, 64]), p


def test_readme_reads_before_its_generated_verdicts_and_leaves_the_fdr_lists_to_the_study_page():
    readme = (ROOT / "README.md").read_text()
    assert block_names(readme) == ["what-we-found-brief", "arm-what-we-found"]
    found = readme[readme.index("## What we found") : readme.index("## Quick start")]
    assert found.index("How to read it") < found.index("<!-- begin generated: what-we-found-brief -->")
    assert "FDR (Benjamini-Hochberg" not in found
    assert "FDR (Benjamini-Hochberg" in (SECOND_EDITION / "README.md").read_text()


def test_readme_says_the_absorption_arm_carries_no_verdict_only_while_its_baselines_miss_the_gate():
    arm = json.loads((SECOND_EDITION / "absorption_arm" / "results.json").read_text())
    cells = {cell.split(" | ")[-1] for cell in arm["below_training_gate"]["same k"]}
    shapes = {run["architecture"] + f" w{run['d_sae']} k{run['k']}" for run in arm["runs"]}
    assert cells == shapes  # every cell below the gate
    assert "both cells' baselines fell short of that gate" in (ROOT / "README.md").read_text()
    assert (
        "Its baselines fell short of that gate, so it carries no verdict"
        in (ROOT / "docs" / "study.md").read_text()
    )
