"""A tiny grid of 2 groups on the real embedded SmolLM2, run as 2 shards through the local launcher and through
submitit's local executor; the SAE folders load with stock SAELens and the report gathers both shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sae_lens import SAE
from tiny_recipes import tiny_recipe_dict

import sae_mask_plugin.sweep.execute as execute
from sae_mask_plugin.sae_metadata import read_masking_metadata
from sae_mask_plugin.sweep import Recipe, run_recipe

pytestmark = pytest.mark.slow

RUN_NAMES = ["batchtopk-k16-w256-p0-s0", "batchtopk-k16-w256-p0.3-token-s0"]


@pytest.fixture(scope="module")
def tiny_recipe() -> Recipe:
    return Recipe.from_dict(
        tiny_recipe_dict(report=True, slurm={"gpus_per_node": 0, "cpus_per_task": 1, "timeout_min": 10})
    )


def _check_sae_folders(paths: list[Path], out: Path) -> None:
    assert sorted(path.name for path in paths) == RUN_NAMES
    for path in paths:
        assert path.parent == out / "saes"
        sae = SAE.load_from_disk(str(path), device="cpu")
        assert sae.cfg.d_sae == 256 and sae.cfg.metadata.hook_name == "blocks.1.hook_resid_post"
        assert json.loads((path / "runner_cfg.json").read_text())["seed"] == 0
    baseline, masked = sorted(paths)
    assert read_masking_metadata(baseline) is None
    masking = read_masking_metadata(masked)
    assert masking is not None and masking.p == 0.3 and masking.mask_token == 3
    results = json.loads((out / "report" / "results.json").read_text())
    assert sorted(run["name"] for run in results["runs"]) == RUN_NAMES
    assert (out / "report" / "report.md").is_file()


def test_two_shards_through_the_local_launcher(
    tiny_recipe: Recipe, tmp_path: Path, monkeypatch, capsys
) -> None:
    first = run_recipe(tiny_recipe, tmp_path, shard="0/2")
    assert len(first) == 1 and not (tmp_path / "report").exists()
    assert "(1 SAE): training and calibration; 0 min so far" in capsys.readouterr().out  # one line per stage
    second = run_recipe(tiny_recipe, tmp_path, shard="1/2")
    assert len(second) == 1
    _check_sae_folders(first + second, tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("finished runs must be skipped")

    monkeypatch.setattr(execute, "MaskedMultiSAETrainingRunner", refuse)
    assert run_recipe(tiny_recipe, tmp_path) == [tmp_path / "saes" / name for name in RUN_NAMES]


def test_two_shards_through_submitit(tiny_recipe: Recipe, tmp_path: Path) -> None:
    paths = run_recipe(tiny_recipe, tmp_path, launcher="submitit", cluster="local", n_shards=2)
    _check_sae_folders(paths, tmp_path)
    assert len(list((tmp_path / "submitit").glob("*_0_log.out"))) == 2
