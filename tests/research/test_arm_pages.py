"""The absorption arm's generated blocks (`research.study_pages.arm_blocks`): the same-k comparison on the fixed
letter set, the letter sets, the training gate, read from a report's results.json of a hand-made arm."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from report_checks import run_record

from research.absorption_arm_held_out import OUT, PAGE, held_out_sentence
from research.study_pages import arm_blocks
from sae_mask_plugin.evals.absorption.letter_set import LetterSetRule
from sae_mask_plugin.report.build import build_report
from sae_mask_plugin.report.gates import TrainingGate

LETTERS = "abcdefghijkl"
SEEDS = range(5)


def _letters(rates: dict[str, float], passed: str, dropped: float) -> dict[str, dict]:
    return {
        letter: {
            "passed": letter in passed,
            "k1_full_absorption_rate": rate,
            "absorption_fraction": rate / 2,
            "k1_dropped_rate": dropped,
        }
        for letter, rate in rates.items()
    }


def _arm(k1_shift: float, masked_ev: float = 0.88) -> list:
    """Five paired seeds at k 4 and 8 (same k, same L0): baselines pass letters a-k (seed 0 misses a, seed 1 also
    passes l); masked SAEs' k = 1 rates are the baseline's plus `k1_shift` (a seed-dependent wobble of 0.01), and
    they pass letters a-h only."""
    records = []
    for seed in SEEDS:
        rates = {letter: 0.3 + 0.02 * index + 0.01 * seed for index, letter in enumerate(LETTERS)}
        passing = LETTERS[1:11] if seed == 0 else LETTERS[:11] + ("l" if seed == 1 else "")
        wobble = 0.01 * (seed % 2)
        for k in (4, 8):
            common = {"l0": float(k), "frac_alive": 0.95}
            records.append(
                replace(
                    run_record(0.0, seed, k, explained_variance=0.90 + 0.001 * seed, **common),
                    absorption_letters=_letters(rates, passing, dropped=0.1),
                )
            )
            shifted = {letter: rate + k1_shift + wobble for letter, rate in rates.items()}
            records.append(
                replace(
                    run_record(0.3, seed, k, explained_variance=masked_ev + 0.001 * seed, **common),
                    absorption_letters=_letters(shifted, LETTERS[:8], dropped=0.2),
                )
            )
    return records


def _blocks(tmp_path, records, **rules) -> dict[str, str]:
    files = build_report(records, tmp_path, letter_set_rule=LetterSetRule(min_baseline_seeds=4), **rules)
    return arm_blocks(json.loads(files.results.read_text()))


def test_the_arm_reads_a_known_reduction_on_the_fixed_letter_set(tmp_path):
    blocks = _blocks(tmp_path, _arm(k1_shift=-0.1))
    found = blocks["arm-what-we-found"]
    assert found.startswith(
        "masked (p=0.3 token) − baseline at the same k (TopK: the same L0), 5 paired seeds (4 dof), k4 / k8:"
    )
    k1 = next(line for line in found.splitlines() if "k = 1 full-absorption rate (fixed letter set)" in line)
    # −0.1 plus the wobble (0.01 in seeds 1 and 3): mean −0.096, at both k
    assert k1.count("−0.096 [") == 2
    assert "masked lower (better)" in k1
    passing = next(line for line in found.splitlines() if "letters of the fixed set passing" in line)
    assert passing.count("−2.800 [") == 2  # 8 of the 11 fixed letters against 10 (seed 0) or 11
    assert (
        "Letter sets, fixed from the baselines alone (letters passing the gate in >= 4 baseline seeds): "
        "batchtopk w256 k4: abcdefghijk (11 letters; in every baseline: bcdefghijk)" in found
    )
    assert "every cell passes" in found
    assert "mean over seeds: baseline k4 0.100; baseline k8 0.100; p=0.3 k4 0.200; p=0.3 k8 0.200." in found
    tables = blocks["arm-tables"]
    assert "| absorption: k = 1 full-absorption rate (fixed letter set) (lower better) |" in tables
    assert "- **Same k**:" in tables


def test_equal_arms_leave_the_absorption_undecided_or_bounded_not_an_effect(tmp_path):
    found = _blocks(tmp_path, _arm(k1_shift=0.0, masked_ev=0.90))["arm-what-we-found"]
    k1 = next(line for line in found.splitlines() if "k = 1 full-absorption rate (fixed letter set)" in line)
    assert "masked lower" not in k1 and "masked higher" not in k1
    assert k1.count("decided: no reduction beyond") == 2  # the wobble's interval is narrower than 0.05


def test_a_cell_below_the_training_gate_is_named(tmp_path):
    gate = TrainingGate(plateau_explained_variance={"batchtopk w256 k4": 0.95, "batchtopk w256 k8": 0.9})
    found = _blocks(tmp_path, _arm(k1_shift=-0.1), training_gate=gate)["arm-what-we-found"]
    assert "below it: k4." in found and "below it: k4, k8" not in found
    assert found.startswith(
        "**Below the training gate: k4.** The gate was written into the recipe before any run; these cells' "
        "baselines fall short of it (k4: core EV 0.900–0.904 against ≥ 0.940, alive 0.95–0.95 against ≥ 0.8)"
    )


def test_an_alive_plateau_gates_its_shape_and_survives_the_results_file(tmp_path):
    """Baselines 0.95 alive: a plateau alive fraction of 0.99 (tolerance 0.02) fails k4 only, and the rule read back
    from results.json (`rules_from_results`) names the per-shape threshold."""
    gate = TrainingGate(
        plateau_explained_variance={"batchtopk w256 k4": 0.9, "batchtopk w256 k8": 0.9},
        plateau_alive_fraction={"batchtopk w256 k4": 0.99},
        alive_tolerance=0.02,
    )
    found = _blocks(tmp_path, _arm(k1_shift=-0.1), training_gate=gate)["arm-what-we-found"]
    assert "below it: k4." in found and "below it: k4, k8" not in found
    assert "alive 0.95–0.95 against ≥ 0.97" in found


def test_cells_that_pass_the_gate_get_no_warning(tmp_path):
    assert "Below the training gate" not in _blocks(tmp_path, _arm(k1_shift=-0.1))["arm-tables"]


def test_results_without_a_letter_set_are_refused(tmp_path):
    files = build_report(_arm(k1_shift=-0.1), tmp_path)
    with pytest.raises(ValueError, match="no absorption letter set"):
        arm_blocks(json.loads(files.results.read_text()))


def test_the_arm_pages_held_out_check_is_generated_from_its_json():
    root = Path(__file__).resolve().parents[2]
    means = json.loads((root / OUT).read_text())["mean_explained_variance"]
    assert held_out_sentence(means) in (root / PAGE).read_text()


def test_both_arm_pages_buffer_check_is_generated_from_its_json():
    from research.absorption_arm_buffer_check import OUT as BUFFER_CHECK
    from research.absorption_arm_buffer_check import PAGES, buffer_check_sentence

    root = Path(__file__).resolve().parents[2]
    sentence = buffer_check_sentence(json.loads((root / BUFFER_CHECK).read_text()))
    for page in PAGES:
        assert sentence in (root / page).read_text(), page


@pytest.mark.parametrize("recipe_name", ["smollm2_absorption_arm", "smollm2_absorption_arm_v2"])
def test_the_arm_recipes_plateaus_are_the_search_snapshots_means(recipe_name):
    """The recipes' gate figures (EV, and alive for the second run) are the mean over the search's three seeds of the
    core-eval figures `research.absorption_arm_plateau` recorded, to the recipe's four decimals."""
    from sae_mask_plugin.sweep import load_recipe

    root = Path(__file__).resolve().parents[2]
    snapshots = json.loads((root / "docs/absorption_validity/low_l0/core_ev.json").read_text())["snapshots"]
    gate = load_recipe(recipe_name).training_gate
    plateaus = {"core_ev": gate.plateau_explained_variance, "frac_alive": gate.plateau_alive_fraction}
    for key, by_shape in plateaus.items():
        for shape, value in by_shape.items():
            k = shape.split()[-1]
            seeds = [row[key] for spec, row in snapshots.items() if spec.split(":")[0].split("-")[2] == k]
            assert len(seeds) == 3
            assert value == pytest.approx(sum(seeds) / 3, abs=5e-5), (recipe_name, key, shape)
    assert gate.plateau_explained_variance
