"""A published study's intervals beside a report's differences: the shipped reference, placement, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_checks import run_record

from sae_mask_plugin.report.build import build_report
from sae_mask_plugin.report.study_reference import (
    StudyInterval,
    StudyReference,
    available_study_references,
    load_study_reference,
    study_reference_from_results,
)
from sae_mask_plugin.sweep import RecipeError, load_recipe

STUDY_RESULTS = Path(__file__).parents[2] / "docs/smollm2_study/results.json"


def test_the_shipped_reference_is_what_the_published_study_gives():
    published = study_reference_from_results("smollm2_study_v2", json.loads(STUDY_RESULTS.read_text()))
    shipped = load_study_reference("smollm2_study_v2")
    assert shipped == published
    cell = "p=0.3 token | matryoshka_batchtopk w4096 k32"
    ev = shipped.interval("matched L0", cell, "explained_variance")
    assert ev is not None and ev.n == 5 and ev.low < ev.mean < ev.high
    assert "w4096 at blocks.6.hook_resid_post, 1,000,000 training tokens per SAE, 5 seeds" in shipped.about
    assert available_study_references() == ["smollm2_study_v2"]


@pytest.mark.parametrize(
    ("value", "placement"),
    [(0.0, "inside"), (0.1, "inside"), (0.11, "outside (above)"), (-0.2, "outside (below)")],
)
def test_a_difference_is_placed_against_the_interval(value, placement):
    assert StudyInterval(mean=0.0, low=-0.1, high=0.1, n=5).place(value) == placement


def test_a_report_places_its_differences_after_the_opening_sentences(tmp_path):
    records = []
    for k, masked_ev in ((16, 0.80), (32, 0.70)):
        records += [
            run_record(0.0, 0, k, l0=float(k), explained_variance=0.82),
            run_record(0.3, 0, k, l0=float(k)),
        ]
        records[-1].metrics["explained_variance"] = masked_ev
    cell16, cell32 = (f"p=0.3 token | batchtopk w256 k{k}" for k in (16, 32))
    reference = StudyReference(
        "a_study",
        "batchtopk w256, 5 seeds",
        {
            "same k": {
                cell: {"explained_variance": StudyInterval(-0.03, -0.05, -0.01, 5)}
                for cell in (cell16, cell32)
            }
        },
    )
    files = build_report(records, tmp_path, study_reference=reference)
    text = files.report.read_text()
    section = text[text.index("## Against the published study") : text.index("## Headline")]
    assert text.index("This report compares") < text.index("## Against the published study")
    assert "1 of 2 fall inside the study's 95 % interval" in section
    escaped16, escaped32 = (cell.replace("|", "\\|") for cell in (cell16, cell32))
    assert (
        f"| same k | {escaped16} | explained variance | -0.0200 | -0.0300 [-0.0500, -0.0100] (5) | inside |"
        in section
    )
    assert (
        f"| same k | {escaped32} | explained variance | -0.1200 |" in section and "outside (below)" in section
    )
    results = json.loads(files.results.read_text())
    assert results["study_reference"]["name"] == "a_study"
    assert [row["placement"] for row in results["study_reference"]["rows"]] == ["inside", "outside (below)"]
    assert "Against the published study" not in build_report(records, tmp_path / "plain").report.read_text()


def test_the_quick_demo_names_its_study_and_an_unknown_study_is_refused():
    recipe = load_recipe("cpu_demo_quick")
    reference = recipe.report_rules()["study_reference"]
    assert reference.name == "smollm2_study_v2"
    demo_cells = {
        f"p=0.3 token | {run.architecture} w{run.sae.d_sae} k{run.sae.k}"  # type: ignore[attr-defined]
        for run in recipe.runs
        if run.masking.is_active
    }
    assert demo_cells and demo_cells <= set(reference.intervals["matched L0"])
    with pytest.raises(RecipeError, match="no study named 'nope'; shipped: smollm2_study_v2"):
        load_recipe("cpu_demo_quick", {"study_reference": "nope"})
