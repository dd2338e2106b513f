"""Shards that share one output folder cooperate: a shard finishing while another still evaluates writes no
report that looks complete, and two processes needing the same OOD oracle or activation file compute it once
(one computes, the other waits and loads). The expensive parts are slow stand-ins; no model is loaded."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from sae_bench.sae_bench_utils.general_utils import get_results_filepath

import sae_mask_plugin.evals.activations as activations_module
import sae_mask_plugin.evals.ood_probing.main as ood_module
import sae_mask_plugin.report
import sae_mask_plugin.sweep.execute as execute
from sae_mask_plugin.evals.activations import ActivationCache
from sae_mask_plugin.evals.ood_probing.main import ProbeResult, cached_oracle
from sae_mask_plugin.report.records import RunRecord
from sae_mask_plugin.sweep import Recipe
from sae_mask_plugin.sweep.archive import ArchiveError, read_archive, write_group_archive
from sae_mask_plugin.sweep.cli import _report_line
from sae_mask_plugin.sweep.plan import Group, plan
from sae_mask_plugin.sweep.shard import Shard

BUILD_SECONDS = 1.0


def _run_twice_at_once(target: Callable[[], None]) -> list[int]:
    """Run `target` in two forked processes started together; returns their exit codes."""
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    return [process.exitcode for process in processes]


def test_two_processes_filling_one_activation_file_compute_it_once(tmp_path: Path, monkeypatch) -> None:
    computed = tmp_path / "computed.log"

    def slow_activations(model, hook_name, texts, max_seq_len, batch_size) -> torch.Tensor:
        with computed.open("a") as log:
            log.write("computed\n")
        time.sleep(BUILD_SECONDS)
        return torch.ones(len(texts), 4)

    monkeypatch.setattr(activations_module, "last_token_activations", slow_activations)
    cache = ActivationCache(tmp_path / "cache", "tiny", "blocks.0.hook_resid_post", 32, 8, model=lambda: None)
    texts = ["a", "b", "c"]

    def fill() -> None:
        assert torch.equal(cache.get("task", texts), torch.ones(3, 4))

    assert _run_twice_at_once(fill) == [0, 0]
    assert computed.read_text().splitlines() == ["computed"]
    assert torch.equal(cache.get("task", texts), torch.ones(3, 4))  # loaded, not computed again
    assert computed.read_text().splitlines() == ["computed"]


def test_two_processes_needing_one_ood_oracle_fit_it_once(tmp_path: Path, monkeypatch) -> None:
    fits = tmp_path / "fits.log"
    result = ProbeResult(id_accuracy=0.9, ood_accuracy=0.7, ood_auc=0.8, C=1.0)

    def slow_fit(data, config) -> list[ProbeResult]:
        with fits.open("a") as log:
            log.write("fitted\n")
        time.sleep(BUILD_SECONDS)
        return [result]

    monkeypatch.setattr(ood_module, "fit_oracle", slow_fit)
    data = SimpleNamespace(key={"task": "task", "texts": "hash"})
    config = SimpleNamespace(split_seeds=[0], num_train=8, num_id_test=8, cv_folds=2)

    def fit() -> None:
        assert cached_oracle(data, config, tmp_path) == [result]  # type: ignore[arg-type]

    assert _run_twice_at_once(fit) == [0, 0]
    assert fits.read_text().splitlines() == ["fitted"]


TINY_RECIPE = {
    "name": "tiny",
    "model_name": "SmolLM2-135M-Instruct",
    "hook_name": "blocks.1.hook_resid_post",
    "d_in": 576,
    "training_tokens": 8192,
    "runner": {"context_size": 64, "n_batches_in_buffer": 16, "train_batch_size_tokens": 1024},
    "masking": {"mask_token": "<repo_name>"},
    "grid": {"seed": [0, 1], "architecture": "batchtopk", "d_sae": 256, "k": 16, "p": [0.0, 0.3]},
    "evals": ["core", "absorption"],
    "report": True,
}


@pytest.fixture
def recipe() -> Recipe:
    return Recipe.from_dict(TINY_RECIPE)


def _write_results(
    recipe: Recipe, out: Path, eval_names: list[str], groups: list[Group] | None = None
) -> None:
    """Eval results of every run of the grid (of `groups`), as the evals write them."""
    for group in plan(recipe) if groups is None else groups:
        for run in group.runs:
            for name in eval_names:
                path = Path(
                    get_results_filepath(str(out / "evals" / group.name / name), run.name, "custom_sae")
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"eval_result_metrics": {}}))


def _records(recipe: Recipe) -> list[RunRecord]:
    return [
        RunRecord(
            name=run.name,
            sae_path=run.name,
            model_name="m",
            hook_name="h",
            architecture="batchtopk",
            d_sae=256,
            k=16,
            seed=run.seed,
            training_tokens=8192,
            mask_p=run.masking.p,
            mask_strategy="token" if run.masking.p else None,
            mask_token=None,
            metrics={"explained_variance": 0.9 - run.masking.p / 10 + run.seed / 100},
        )
        for run in recipe.runs
    ]


@pytest.fixture
def finished_grid(recipe: Recipe, monkeypatch) -> None:
    """Every SAE of the grid counts as trained; the report gathers stand-in records instead of SAE folders."""
    monkeypatch.setattr(execute, "is_finished", lambda path: True)
    monkeypatch.setattr(sae_mask_plugin.report, "collect_runs", lambda roots: _records(recipe))


def test_missing_evals_lists_every_run_and_eval_without_a_result(recipe: Recipe, tmp_path: Path) -> None:
    assert len(execute.missing_evals(recipe, tmp_path)) == len(recipe.runs) * 2
    _write_results(recipe, tmp_path, ["core"])
    missing = execute.missing_evals(recipe, tmp_path)
    assert sorted(missing) == sorted(f"{run.name}: absorption" for run in recipe.runs)
    _write_results(recipe, tmp_path, ["absorption"])
    assert execute.missing_evals(recipe, tmp_path) == []


def test_a_report_written_before_every_eval_exists_says_so_in_its_first_line(
    recipe: Recipe, tmp_path: Path, finished_grid
) -> None:
    _write_results(recipe, tmp_path, ["core"])
    report = execute.build_report_if_complete(recipe, tmp_path)
    assert report is not None
    first_line = report.read_text().splitlines()[0]
    assert (
        first_line.startswith("> **Partial report: 4 evals have no result yet**")
        and "absorption" in first_line
    )
    assert json.loads((tmp_path / "report" / "results.json").read_text())["notices"] == [first_line[2:]]
    assert "(partial: some evals have no result yet" in _report_line(tmp_path)
    _write_results(recipe, tmp_path, ["absorption"])
    report = execute.build_report_if_complete(recipe, tmp_path)
    assert report is not None and report.read_text().startswith("# Masked regularization")
    assert "partial" not in _report_line(tmp_path)


def test_the_shard_finishing_last_writes_the_last_report(
    recipe: Recipe, tmp_path: Path, finished_grid, monkeypatch
) -> None:
    """Shard A finishes while B still evaluates and starts a slow report; B finishes its evals meanwhile and
    builds its report: B's complete report must not be overwritten by A's partial one."""
    real_build = sae_mask_plugin.report.build_report
    written: list[bool] = []
    building = threading.Event()

    def slow_build(records, out_dir, notices=(), **rules):
        building.set()
        time.sleep(BUILD_SECONDS)
        written.append(bool(notices))
        return real_build(records, out_dir, notices=notices, **rules)

    monkeypatch.setattr(sae_mask_plugin.report, "build_report", slow_build)
    _write_results(recipe, tmp_path, ["core"])
    shard_a = threading.Thread(target=execute.build_report_if_complete, args=(recipe, tmp_path))
    shard_a.start()
    assert building.wait(timeout=30)
    _write_results(recipe, tmp_path, ["absorption"])  # shard B's last evals land while A writes its report
    execute.build_report_if_complete(recipe, tmp_path)  # shard B
    shard_a.join(timeout=60)
    assert written == [True, False]
    assert (tmp_path / "report" / "report.md").read_text().startswith("# Masked regularization")


@pytest.fixture
def machine(recipe: Recipe, monkeypatch) -> set[str]:
    """A machine whose training and evals are stand-ins: the names of the SAEs it holds (training adds them, the
    evals write empty results, the report gathers stand-in records of the SAE folders it is given)."""
    trained: set[str] = set()

    def train(recipe: Recipe, group: Group, out_dir: Path) -> list[Path]:
        trained.update(run.name for run in group.runs)
        return [execute.sae_dir(out_dir, run) for run in group.runs]

    monkeypatch.setattr(execute, "train_group", train)
    monkeypatch.setattr(
        execute,
        "evaluate_group",
        lambda recipe, group, paths, out: _write_results(recipe, out, recipe.evals, [group]),
    )
    monkeypatch.setattr(execute, "is_finished", lambda path: Path(path).name in trained)
    monkeypatch.setattr(
        sae_mask_plugin.report,
        "collect_runs",
        lambda roots: [
            record for record in _records(recipe) if record.name in {Path(root).name for root in roots}
        ],
    )
    return trained


def test_a_grid_is_finished_on_a_second_machine_that_keeps_only_the_archive(
    recipe: Recipe, tmp_path: Path, machine: set[str], monkeypatch
) -> None:
    archive = tmp_path / "archive"
    first_share = Shard(0, 2).select(plan(recipe))
    assert execute.run_shard(recipe, tmp_path / "first", Shard(0, 2), archive)
    assert sorted(path.stem for path in archive.glob("*.json")) == sorted(group.name for group in first_share)
    assert not (tmp_path / "first" / "report").exists()  # half the grid is not a report

    machine.clear()  # a fresh machine: no SAE folder, no eval result, only the archive
    trained_here: list[str] = []
    train = execute.train_group
    monkeypatch.setattr(
        execute, "train_group", lambda *args: trained_here.append(args[1].name) or train(*args)
    )
    execute.run_shard(recipe, tmp_path / "second", None, archive)
    second_share = {group.name for group in plan(recipe)} - {group.name for group in first_share}
    assert sorted(trained_here) == sorted(second_share)  # the archived groups were not trained again
    results = json.loads((tmp_path / "second" / "report" / "results.json").read_text())
    assert sorted(run["name"] for run in results["runs"]) == sorted(run.name for run in recipe.runs)
    assert not results["notices"]
    archived = read_archive(archive, recipe.name)
    assert {name: record.metrics for name, record in archived.items()} == {
        record.name: record.metrics for record in _records(recipe)
    }


def test_runs_added_to_archived_groups_are_trained_alone_and_archived_beside_them(
    recipe: Recipe, tmp_path: Path, machine: set[str], monkeypatch
) -> None:
    archive = tmp_path / "archive"
    execute.run_shard(recipe, tmp_path / "first", None, archive)
    extended = Recipe.from_dict({**TINY_RECIPE, "grid": {**TINY_RECIPE["grid"], "k": [16, 32]}})
    assert {group.name for group in plan(extended)} == {group.name for group in plan(recipe)}  # same groups

    machine.clear()  # a fresh machine that keeps only the archive
    trained_here: list[str] = []
    train = execute.train_group
    monkeypatch.setattr(
        execute,
        "train_group",
        lambda *args: trained_here.extend(run.name for run in args[1].runs) or train(*args),
    )
    monkeypatch.setattr(
        sae_mask_plugin.report,
        "collect_runs",
        lambda roots: [r for r in _records(extended) if r.name in {Path(root).name for root in roots}],
    )
    execute.run_shard(extended, tmp_path / "second", None, archive)
    new_runs = sorted(run.name for run in extended.runs if run.name not in {r.name for r in recipe.runs})
    assert sorted(trained_here) == new_runs and all("-k32-" in name for name in new_runs)
    archived = read_archive(archive, extended.name)
    assert sorted(archived) == sorted(
        run.name for run in extended.runs
    )  # earlier records kept beside the new
    results = json.loads((tmp_path / "second" / "report" / "results.json").read_text())
    assert sorted(run["name"] for run in results["runs"]) == sorted(run.name for run in extended.runs)


def test_a_group_with_a_missing_eval_is_not_archived(
    recipe: Recipe, tmp_path: Path, machine: set[str], monkeypatch
) -> None:
    monkeypatch.setattr(
        execute,
        "evaluate_group",
        lambda recipe, group, paths, out: _write_results(recipe, out, ["core"], [group]),
    )
    execute.run_shard(recipe, tmp_path / "out", None, tmp_path / "archive")
    assert read_archive(tmp_path / "archive", recipe.name) == {}
    assert (tmp_path / "out" / "report" / "report.md").read_text().startswith("> **Partial report")


def test_an_archive_of_another_recipe_or_a_file_is_refused(recipe: Recipe, tmp_path: Path) -> None:
    write_group_archive(tmp_path / "archive", "other", "p0-s0", _records(recipe)[:1])
    with pytest.raises(ArchiveError, match="archives recipe 'other'"):
        read_archive(tmp_path / "archive", recipe.name)
    (tmp_path / "file").write_text("")
    with pytest.raises(ArchiveError, match="is a file"):
        read_archive(tmp_path / "file", recipe.name)
