"""Running a recipe: each group is one `MaskedMultiSAETrainingRunner` job, shards run in-process or as a SLURM job
array through submitit; finished runs are skipped, then evals and the report run when the recipe asks.

Output layout of `out_dir`:
    saes/<run name>/          a SAELens SAE folder (masking metadata in cfg.json; runner_cfg.json of its group)
    groups/<group name>/      the group's runner_cfg.json (SAEs are written here, then moved to saes/)
    checkpoints/<group name>/ the group's training checkpoints; a rerun resumes from the latest complete one
    evals/<group name>/       `sae-mask eval` results of the group's SAEs (SAEBench layout)
    evals/<group>/saebench/   SAEBench SCR / TPP results, or scr_tpp_status.json saying why they did not run
    report/                   `sae-mask compare` report, once every run of the grid is done (its first line says
                              when evals of another shard were still missing)
    submitit/                 submitit's job files and logs (`--launcher submitit`)
With an archive folder (`sweep.archive`), each group's run records are also written there once its evals are
complete; archived runs count as done, and the report joins their records with those of the SAE folders present.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, get_args

from sae_lens import SAE
from sae_lens.constants import RUNNER_CFG_FILENAME, SAE_CFG_FILENAME
from safetensors import SafetensorError

from sae_mask_plugin.embedded.corpus import load_embedded_corpus
from sae_mask_plugin.files import build_lock
from sae_mask_plugin.report.records import RunRecord
from sae_mask_plugin.sweep.archive import read_archive, write_group_archive
from sae_mask_plugin.sweep.partial import partial_report_notice
from sae_mask_plugin.sweep.plan import Group, pending_group, plan, progress_line
from sae_mask_plugin.sweep.recipe import EMBEDDED_DATASET, EXTERNAL_EVALS, Recipe, Run, load_recipe
from sae_mask_plugin.sweep.saebench import STATUS_FILENAME as SCR_TPP_STATUS_FILENAME
from sae_mask_plugin.sweep.saebench import run_scr_and_tpp
from sae_mask_plugin.sweep.shard import Shard
from sae_mask_plugin.training.config import MaskedMultiSAETrainingRunnerConfig
from sae_mask_plugin.training.interruption import (
    TrainingInterrupted,
    latest_complete_checkpoint,
    preemption_signal,
)
from sae_mask_plugin.training.runner import MaskedMultiSAETrainingRunner

Launcher = Literal["local", "submitit"]
LAUNCHERS: tuple[str, ...] = get_args(Launcher)


def sae_dir(out_dir: str | Path, run: Run) -> Path:
    """Where a run's SAE is saved."""
    return Path(out_dir) / "saes" / run.name


def is_finished(path: str | Path) -> bool:
    """Whether `path` is a saved SAE folder that stock SAELens loads."""
    if not (Path(path) / SAE_CFG_FILENAME).is_file():
        return False
    try:
        SAE.load_from_disk(str(path), device="cpu")
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError):
        return False
    return True


def train_group(recipe: Recipe, group: Group, out_dir: str | Path) -> list[Path]:
    """Train the group's unfinished runs from one masked LLM pass; returns every run's SAE folder."""
    out = Path(out_dir)
    pending = tuple(run for run in group.runs if not is_finished(sae_dir(out, run)))
    if pending:
        staging = out / "groups" / group.name
        checkpoints = out / "checkpoints" / group.name
        cfg = replace(group, runs=pending).runner_config(
            recipe, output_path=str(staging), checkpoint_path=str(checkpoints)
        )
        cfg.resume_from_checkpoint = _checkpoint_to_resume(checkpoints, cfg)
        dataset = (
            load_embedded_corpus(seed=group.seed, show_progress=False)
            if recipe.dataset == EMBEDDED_DATASET
            else None
        )
        MaskedMultiSAETrainingRunner(cfg, override_dataset=dataset, init_b_dec=recipe.init_b_dec).run()
        # The runner's LLM sits in reference cycles: free it before the evals load theirs (two Gemma-2-2B
        # copies do not fit where one does).
        gc.collect()
        for run in pending:
            target = sae_dir(out, run)
            shutil.copy2(staging / RUNNER_CFG_FILENAME, staging / run.name / RUNNER_CFG_FILENAME)
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / run.name, target)
    return [sae_dir(out, run) for run in group.runs]


_PATH_FIELDS = ("output_path", "checkpoint_path", "resume_from_checkpoint")


def _settings_of(runner_cfg: dict[str, Any]) -> dict[str, Any]:
    """A runner config as JSON, without its paths and the SAE metadata that training fills in."""
    settings = {key: value for key, value in runner_cfg.items() if key not in _PATH_FIELDS}
    settings["saes"] = {
        name: {key: value for key, value in sae.items() if key != "metadata"}
        for name, sae in settings.get("saes", {}).items()
    }
    return json.loads(json.dumps(settings, default=str))


def _checkpoint_to_resume(checkpoints: Path, cfg: MaskedMultiSAETrainingRunnerConfig) -> str | None:
    """The latest complete checkpoint of this group's runs (None: start afresh); refuses one written with other
    settings, which would silently mix two configurations."""
    checkpoint = latest_complete_checkpoint(checkpoints, required=tuple(cfg.saes))
    if checkpoint is None:
        return None
    saved = _settings_of(json.loads((checkpoint / RUNNER_CFG_FILENAME).read_text()))
    current = _settings_of(cfg.to_dict())
    changed = sorted(key for key in current.keys() | saved.keys() if current.get(key) != saved.get(key))
    if changed:
        raise ValueError(
            f"the checkpoint {checkpoint} was written with other settings ({', '.join(changed)}); restore the "
            f"recipe, or delete {checkpoints} to train these runs afresh"
        )
    return str(checkpoint)


def evaluate_group(recipe: Recipe, group: Group, sae_paths: Sequence[Path], out_dir: str | Path) -> None:
    """Run the recipe's evals on a group's SAEs (finished evals are skipped by the evals themselves)."""
    evals_dir = Path(out_dir) / "evals"
    internal = [name for name in recipe.evals if name not in EXTERNAL_EVALS]
    if internal:
        from sae_mask_plugin.evals import evaluate_saes

        evaluate_saes(
            sae_paths,
            internal,
            out_dir=evals_dir / group.name,
            preset=recipe.eval_preset,
            device=recipe.device,
            cache_dir=evals_dir / "cache",
            configs=recipe.eval_settings(),
            llm_dtype=recipe.llm_dtype,
        )
    external = [name for name in recipe.evals if name in EXTERNAL_EVALS]
    if external:
        run_scr_and_tpp(
            sae_paths, external, recipe.model_name, evals_dir / group.name / "saebench", recipe.device
        )


def missing_evals(
    recipe: Recipe, out_dir: str | Path, groups: Sequence[Group] | None = None, done: Sequence[str] = ()
) -> list[str]:
    """`<run>: <eval>` for every eval of the recipe (of `groups`, default all) that has no complete result yet
    (another shard may still be running it, or it failed); runs named in `done` (archived) have theirs."""
    from sae_bench.sae_bench_utils.general_utils import get_results_filepath

    from sae_mask_plugin.evals.common import is_complete_result

    evals_dir = Path(out_dir) / "evals"
    internal = [name for name in recipe.evals if name not in EXTERNAL_EVALS]
    external = [name for name in recipe.evals if name in EXTERNAL_EVALS]
    missing = []
    for group in plan(recipe) if groups is None else groups:
        runs = [run for run in group.runs if run.name not in done]
        for run in runs:
            missing += [
                f"{run.name}: {name}"
                for name in internal
                if not is_complete_result(
                    get_results_filepath(str(evals_dir / group.name / name), run.name, "custom_sae")
                )
            ]
        if (
            external
            and runs
            and not (evals_dir / group.name / "saebench" / SCR_TPP_STATUS_FILENAME).is_file()
        ):
            missing += [f"{run.name}: {name}" for run in runs for name in external]
    return missing


def archive_group(recipe: Recipe, group: Group, out_dir: str | Path, archive: str | Path) -> Path | None:
    """Write the group's run records (settings + metrics) to the archive once its SAEs are trained and every
    eval has a result; returns the file, or None while something is missing."""
    out = Path(out_dir)
    if not all(is_finished(sae_dir(out, run)) for run in group.runs) or missing_evals(recipe, out, [group]):
        return None
    from sae_mask_plugin.report import collect_runs

    evals = out / "evals" / group.name
    records = collect_runs([sae_dir(out, run) for run in group.runs] + ([evals] if evals.is_dir() else []))
    return write_group_archive(archive, recipe.name, group.name, records)


def build_report_if_complete(
    recipe: Recipe, out_dir: str | Path, archive: str | Path | None = None
) -> Path | None:
    """Write `report/` (as `sae-mask compare` does) when every run of the grid is finished or archived; else
    None. A report written while some evals have no result says so in its first line. Shards finishing at once
    take turns (`build_lock`), each looking for missing evals once it holds the lock, so the last report written
    is the most complete one."""
    out = Path(out_dir)
    archived = read_archive(archive, recipe.name)
    present = [run for run in recipe.runs if run.name not in archived]
    if not recipe.report or not all(is_finished(sae_dir(out, run)) for run in present):
        return None
    from sae_mask_plugin.report import build_report, collect_runs

    with build_lock(out / "report"):
        missing = missing_evals(recipe, out, done=list(archived))
        records: list[RunRecord] = list(archived.values())
        if present:
            roots = [sae_dir(out, run) for run in present]
            roots += [out / "evals"] if (out / "evals").is_dir() else []
            records = collect_runs(roots) + records
        notices = [partial_report_notice(missing)] if missing else []
        return build_report(records, out / "report", notices=notices, **recipe.report_rules()).report


def run_shard(
    recipe: Recipe, out_dir: str | Path, shard: Shard | None = None, archive: str | Path | None = None
) -> list[Path]:
    """Train (and evaluate) the groups of `shard` (all groups when None) in this process; returns their SAE
    folders. Runs in `archive` are done (a group with some of them trains the others); each group finished here
    is archived there. The shard that completes the grid also writes the report."""
    archived = read_archive(archive, recipe.name)
    paths: list[Path] = []
    selected = shard.select(plan(recipe)) if shard is not None else plan(recipe)
    groups = [
        group for whole in selected if (group := pending_group(whole, lambda run: run.name in archived))
    ]
    started = time.monotonic()

    def progress(index: int, stage: str) -> None:
        print(progress_line(recipe, groups, index, stage, time.monotonic() - started), flush=True)

    for index, group in enumerate(groups):
        progress(index, "training and calibration")
        group_paths = train_group(recipe, group, out_dir)
        if recipe.evals:
            progress(index, "evals")
            evaluate_group(recipe, group, group_paths, out_dir)
        if archive is not None:
            archive_group(recipe, group, out_dir, archive)
        paths += group_paths
    if recipe.report:
        progress(len(groups), "report")
    build_report_if_complete(recipe, out_dir, archive)
    return paths


class ShardJob:
    """`run_shard` as one job-array task under submitit's checkpoint/requeue protocol.

    On submitit's timeout/preemption signal the training stops after its current step with a complete checkpoint;
    then submitit's own handler calls `checkpoint` (the same task again) and requeues it, and the requeued task
    resumes from that checkpoint (runs already finished are skipped).
    """

    def __call__(
        self, recipe: Recipe, out_dir: Path, shard: Shard, archive: Path | None = None
    ) -> list[Path]:
        try:
            return run_shard(recipe, out_dir, shard, archive)
        except TrainingInterrupted as stopped:
            if stopped.signum == preemption_signal() and callable(signal.getsignal(stopped.signum)):
                signal.raise_signal(
                    stopped.signum
                )  # submitit's handler, back in place: checkpoint, requeue, exit
            raise

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """The task to requeue: this one with the same arguments (the state lives in `out_dir`)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


def submit_shards(
    recipe: Recipe,
    out_dir: str | Path,
    n_shards: int | None = None,
    cluster: str | None = None,
    slurm_overrides: Mapping[str, Any] | None = None,
    archive: str | Path | None = None,
) -> list[Any]:
    """Submit the grid as a job array of `n_shards` tasks (default: one per group) through
    `submitit.AutoExecutor`; `cluster` is `slurm`, `local` or `debug` (None: detected); `archive` as in
    `run_shard`. Returns the jobs."""
    import submitit

    groups = plan(recipe)
    count = n_shards or len(groups)
    Shard(0, count)  # validates count
    slurm = replace(recipe.slurm, **(slurm_overrides or {}))
    executor = submitit.AutoExecutor(folder=Path(out_dir) / "submitit", cluster=cluster)
    executor.update_parameters(name=f"sae-mask-{recipe.name}", **slurm.executor_parameters())
    shards = [Shard(index, count) for index in range(count)]
    archives = [None if archive is None else Path(archive)] * count
    return executor.map_array(ShardJob(), [recipe] * count, [Path(out_dir)] * count, shards, archives)


def run_recipe(
    recipe_or_path: Recipe | str | Path,
    out_dir: str | Path,
    shard: Shard | str | None = None,
    launcher: Launcher = "local",
    overrides: Mapping[str, Any] | None = None,
    *,
    n_shards: int | None = None,
    cluster: str | None = None,
    archive: str | Path | None = None,
) -> list[Path]:
    """Run a recipe (or its shard `i/n` with the local launcher) and return the SAE folders it covers; `archive`
    as in `run_shard`.

    `launcher="submitit"` submits every shard as one job array task, waits for all, and returns every SAE folder.
    `overrides` sets dotted recipe keys (e.g. `{"runner.device": "cuda"}`) when a path or name is given.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {', '.join(LAUNCHERS)}; got {launcher!r}")
    if isinstance(recipe_or_path, Recipe):
        if overrides:
            raise ValueError("overrides apply to a recipe file; edit the Recipe object instead")
        recipe = recipe_or_path
    else:
        recipe = load_recipe(recipe_or_path, overrides)
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    if launcher == "local":
        return run_shard(recipe, out_dir, shard, archive)
    if shard is not None:
        raise ValueError("--shard picks one machine's share; with the submitit launcher use n_shards")
    jobs = submit_shards(recipe, out_dir, n_shards, cluster, archive=archive)
    return [path for job in jobs for path in job.result()]
