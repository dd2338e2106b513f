"""The training gate: convergence to a learning curve's plateau where the recipe gives one, else absolute."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from report_checks import run_record

from sae_mask_plugin.report.build import build_report, cells_below_training_gate
from sae_mask_plugin.report.gates import (
    ALIVE_GATE_MARGIN,
    EV_GATE_MARGIN,
    TrainingGate,
    TrainingGateError,
    below_training_gate,
    training_gate_note,
    with_gate_margins,
)
from sae_mask_plugin.sweep import Recipe, RecipeError

CONVERGED = TrainingGate(plateau_explained_variance={"batchtopk w256 k16": 0.83}, ev_tolerance=0.01)


def test_a_baseline_passes_within_tolerance_of_its_shapes_plateau_and_others_need_the_absolute_figure():
    near, far = (
        run_record(0.0, 0, 16, explained_variance=0.825),
        run_record(0.0, 1, 16, explained_variance=0.815),
    )
    other_shape = run_record(0.0, 0, 32, explained_variance=0.84)
    near, far, other_shape = with_gate_margins([near, far, other_shape], CONVERGED)
    assert near.metrics[EV_GATE_MARGIN] == pytest.approx(0.005)
    assert not below_training_gate(near.metrics, CONVERGED)
    assert below_training_gate(far.metrics, CONVERGED)
    assert below_training_gate(other_shape.metrics, CONVERGED)  # no plateau for k32: 0.84 < 0.85
    alive_low = with_gate_margins(
        [run_record(0.0, 0, 16, explained_variance=0.9, frac_alive=0.7)], CONVERGED
    )[0]
    assert below_training_gate(alive_low.metrics, CONVERGED)
    masked = with_gate_margins([run_record(0.3, 0, 16, explained_variance=0.5)], CONVERGED)[0]
    assert EV_GATE_MARGIN not in masked.metrics  # the gate reads baselines


def test_a_shape_with_a_plateau_alive_fraction_is_gated_on_it_and_others_on_the_absolute_figure():
    gate = replace(CONVERGED, plateau_alive_fraction={"batchtopk w256 k16": 0.67}, alive_tolerance=0.05)
    near, far = with_gate_margins(
        [
            run_record(0.0, 0, 16, explained_variance=0.83, frac_alive=0.63),
            run_record(0.0, 1, 16, explained_variance=0.83, frac_alive=0.61),
        ],
        gate,
    )
    assert near.metrics[ALIVE_GATE_MARGIN] == pytest.approx(0.01)
    assert not below_training_gate(near.metrics, gate)  # 0.63 >= 0.67 - 0.05, though below the absolute 0.8
    assert below_training_gate(far.metrics, gate)
    other_shape = with_gate_margins([run_record(0.0, 0, 32, explained_variance=0.9, frac_alive=0.7)], gate)[0]
    assert ALIVE_GATE_MARGIN not in other_shape.metrics
    assert below_training_gate(other_shape.metrics, gate)  # no plateau alive for k32: 0.7 < 0.8
    assert "alive fraction within 0.05 of its plateau's (batchtopk w256 k16 0.670; other shapes ≥ 0.8)" in (
        gate.describe()
    )
    with pytest.raises(TrainingGateError, match=r"plateau_alive_fraction\['k16'\] must be in \(0, 1\]"):
        TrainingGate(plateau_alive_fraction={"k16": 1.5})
    with pytest.raises(TrainingGateError, match=r"alive_tolerance must be in \[0, 1\)"):
        TrainingGate(alive_tolerance=-0.1)


def _pairs(ev16: float, ev32: float) -> list:
    records = []
    for seed in range(3):
        records += [
            run_record(0.0, seed, 16, l0=16.0, explained_variance=ev16, frac_alive=0.95),
            run_record(0.0, seed, 32, l0=32.0, explained_variance=ev32, frac_alive=0.95),
            run_record(0.3, seed, 16, l0=20.0, explained_variance=ev16 - 0.01 * (seed + 1), frac_alive=0.9),
        ]
    return records


def test_at_matched_l0_the_interpolated_baseline_meets_the_interpolated_threshold():
    # k16 baselines at 0.825 (plateau 0.83 - 0.01: passes by 0.005), k32 at 0.845 (no plateau, absolute 0.85:
    # fails by 0.005); the masked L0 20 lies a third of the way in log L0, where the margin is still positive
    records = with_gate_margins(_pairs(0.825, 0.845), CONVERGED)
    assert [r.metrics[EV_GATE_MARGIN] for r in records[:2]] == pytest.approx([0.005, -0.005])
    below = cells_below_training_gate(records, CONVERGED)
    assert below["matched L0"] == {} and below["same k"] == {}
    absolute = cells_below_training_gate(_pairs(0.825, 0.845))
    assert set(absolute["matched L0"]) == set(absolute["same k"]) == {"p=0.3 token | batchtopk w256 k16"}


def test_the_report_states_its_gate_and_the_absolute_figure_beside_it(tmp_path):
    files = build_report(_pairs(0.825, 0.87), tmp_path, training_gate=CONVERGED)
    results = json.loads(files.results.read_text())
    assert results["below_training_gate"] == {"matched L0": {}, "same k": {}}
    assert results["training_gate"]["plateau_explained_variance"] == {"batchtopk w256 k16": 0.83}
    text = training_gate_note([replace(r, metrics=dict(r.metrics)) for r in _pairs(0.825, 0.87)], CONVERGED)
    assert "for reference, 3 of 6 baselines are below the absolute explained variance 0.85" in text
    assert text in files.report.read_text()
    assert "Undertrained" not in files.report.read_text()
    absolute = json.loads(build_report(_pairs(0.825, 0.87), tmp_path / "absolute").results.read_text())
    assert absolute["below_training_gate"]["same k"] == {
        "p=0.3 token | batchtopk w256 k16": ["run-p0.3-k16-s0", "run-p0.3-k16-s1", "run-p0.3-k16-s2"]
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ev_tolerance": -0.01}, "ev_tolerance"),
        ({"min_alive_fraction": 1.5}, "min_alive_fraction"),
        ({"plateau_explained_variance": {"topk w8192 k8": 1.2}}, "plateau_explained_variance"),
        ({"plateau_explained_variance": [0.8]}, "must map SAE shapes"),
    ],
)
def test_an_impossible_gate_is_refused(kwargs, message):
    with pytest.raises(TrainingGateError, match=message):
        TrainingGate(**kwargs)


def test_a_recipe_fixes_its_gate_before_the_runs_and_refuses_a_bad_one():
    recipe = {
        "name": "gated",
        "model_name": "SmolLM2-135M-Instruct",
        "hook_name": "blocks.1.hook_resid_post",
        "d_in": 576,
        "training_tokens": 8192,
        "runner": {"train_batch_size_tokens": 2048},
        "grid": {"architecture": "topk", "d_sae": 256, "k": 8, "p": [0.0, 0.3]},
    }
    gate = {"plateau_explained_variance": {"topk w256 k8": 0.8}, "ev_tolerance": 0.02}
    assert Recipe.from_dict({**recipe, "training_gate": gate}).training_gate == TrainingGate(**gate)
    with pytest.raises(RecipeError, match="training_gate: ev_tolerance must be in"):
        Recipe.from_dict({**recipe, "training_gate": {"ev_tolerance": 2}})
    with pytest.raises(RecipeError, match="tolerence"):
        Recipe.from_dict({**recipe, "training_gate": {"ev_tolerence": 0.01}})


def test_a_report_mixing_llm_dtypes_says_so_before_anything_else(tmp_path):
    records = _pairs(0.9, 0.9)
    records = [replace(r, llm_dtype="bfloat16" if r.seed == 0 else "float32") for r in records]
    results = json.loads(build_report(records, tmp_path).results.read_text())
    assert results["settings"]["llm_dtypes"] == ["bfloat16", "float32"]
    (warning,) = [w for w in results["gates"] if w.startswith("**Mixed LLM dtypes**")]
    assert "(3 in bfloat16, 6 in float32)" in warning
    one_dtype = [replace(r, llm_dtype="bfloat16") for r in records]
    assert not any(
        "Mixed" in w
        for w in json.loads(build_report(one_dtype, tmp_path / "one").results.read_text())["gates"]
    )
