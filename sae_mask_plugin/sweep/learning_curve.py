"""Learning curve of a recipe's setting: explained variance, alive fraction, L0 (the recipe's own core eval) and
FVU on clean unseen text against training tokens, to choose the recipe's token budget (`sae-mask learning-curve`).

The curve trains the recipe's own jobs (its hook, width, architecture, runner settings and LLM dtype; one seed,
the given p and k), each (p, seed) job training every k from one masked LLM pass as the sweep does, with SAELens
checkpoints at `points - 1` evenly spaced token counts. Every checkpoint and final SAE becomes an inference SAE
(as SAELens saves the final one), its threshold calibrated to L0 = k on clean text, and is evaluated with the
recipe's eval settings (default core) and for FVU and L0 on clean text no run read. Everything is resumable:
finished jobs, converted checkpoints and evals are not redone, and an interrupted job resumes from its latest
complete checkpoint. Writes `<out>/learning_curve.json`, `.png` and `.md` (a table and the token count from which
each k passes the report's training gates).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from sae_lens import SAE, TrainingSAE  # noqa: E402
from sae_lens.constants import SAE_CFG_FILENAME  # noqa: E402
from transformer_lens import HookedTransformer  # noqa: E402

from sae_mask_plugin.calibration.settings import CALIBRATION_METADATA_KEY  # noqa: E402
from sae_mask_plugin.calibration.threshold import calibrate_saved_saes_at_hooks, fvu_and_l0  # noqa: E402
from sae_mask_plugin.clean_activations import clean_token_activations  # noqa: E402
from sae_mask_plugin.embedded.corpus import load_calibration_texts  # noqa: E402
from sae_mask_plugin.embedded.model import load_model  # noqa: E402
from sae_mask_plugin.evals.runner import evaluate_saes  # noqa: E402
from sae_mask_plugin.files import staged_directory, write_json_atomic, write_text_atomic  # noqa: E402
from sae_mask_plugin.report.collect import flatten_metrics  # noqa: E402
from sae_mask_plugin.report.gates import MIN_ALIVE_FRACTION, MIN_EXPLAINED_VARIANCE  # noqa: E402
from sae_mask_plugin.sae_metadata import read_masking_record, write_masking_metadata  # noqa: E402
from sae_mask_plugin.sweep.execute import sae_dir, train_group  # noqa: E402
from sae_mask_plugin.sweep.plan import Group, plan  # noqa: E402
from sae_mask_plugin.sweep.recipe import Recipe, load_recipe  # noqa: E402
from sae_mask_plugin.training.config import MaskedMultiSAETrainingRunnerConfig  # noqa: E402
from sae_mask_plugin.training.interruption import CHECKPOINT_COMPLETE_FILENAME  # noqa: E402

CURVE_METRICS = (
    "clean_fvu",
    "explained_variance",
    "frac_alive",
    "clean_l0",
    "l0",
    "ce_loss_score",
)
LABELS = {
    "clean_fvu": "FVU, clean unseen text (lower better)",
    "explained_variance": "explained variance (core eval)",
    "frac_alive": "alive fraction (core eval)",
    "clean_l0": "L0, clean unseen text",
    "l0": "L0 (core eval)",
    "ce_loss_score": "CE loss recovered (core eval)",
}
TARGETS = {"explained_variance": MIN_EXPLAINED_VARIANCE, "frac_alive": MIN_ALIVE_FRACTION}
"""The report's training gates: a baseline below either is undertrained."""
CLEAN_TOKENS = 32_768


def curve_recipe(
    name: str, tokens: int, points: int, ps: list[float], ks: list[int], seed: int, overrides: dict[str, Any]
) -> Recipe:
    """The recipe (with `overrides`, dotted keys) with one grid block (its first block's architecture and width,
    one seed, `ps` x `ks`), `tokens` per run and `points - 1` periodic checkpoints; no report, no time estimate."""
    base = load_recipe(name, overrides)
    block = base.grid[0]
    return load_recipe(
        name,
        {
            **overrides,
            "name": f"{base.name}-curve",
            "training_tokens": tokens,
            "runner.n_checkpoints": points - 1,
            "grid": [
                {
                    "seed": seed,
                    "p": ps,
                    "architecture": block["architecture"],
                    "d_sae": block["d_sae"],
                    "k": ks,
                }
            ],
            "report": False,
            "throughput": None,
        },
    )


def curve_folders(out: Path, group: Group, recipe: Recipe) -> dict[str, dict[int, Path]]:
    """`{run name: {training tokens: inference SAE folder}}` for every periodic checkpoint of the job (SAELens names
    them by their token count, one subfolder per SAE) and its final SAEs."""
    folders: dict[str, dict[int, Path]] = {run.name: {} for run in group.runs}
    for marker in (out / "checkpoints" / group.name).rglob(CHECKPOINT_COMPLETE_FILENAME):
        checkpoint = marker.parent
        if not checkpoint.name.isdigit():
            continue
        for run in group.runs:
            target = out / "curve" / f"{run.name}-t{int(checkpoint.name)}"
            if not (target / SAE_CFG_FILENAME).is_file():
                sae = TrainingSAE.load_from_disk(str(checkpoint / run.name), device="cpu")
                final = sae_dir(out, run)
                write_masking_metadata(sae, read_masking_record(final))
                # the final SAE's metadata (LLM dtype, training positions, ...) without its calibration
                known = sae.cfg.metadata.to_dict()
                for key, value in json.loads((final / SAE_CFG_FILENAME).read_text())["metadata"].items():
                    if key not in known and key != CALIBRATION_METADATA_KEY:
                        sae.cfg.metadata[key] = value
                with staged_directory(target) as staging:
                    sae.save_inference_model(str(staging))
            folders[run.name][int(checkpoint.name)] = target
    for run in group.runs:
        target = out / "curve" / f"{run.name}-t{recipe.training_tokens}"
        if not (target / SAE_CFG_FILENAME).is_file():
            with staged_directory(target) as staging:
                shutil.copytree(sae_dir(out, run), staging, dirs_exist_ok=True)
        folders[run.name][recipe.training_tokens] = target
    return {name: dict(sorted(points.items())) for name, points in folders.items()}


def calibrate(
    folders: list[Path], recipe: Recipe, runner: MaskedMultiSAETrainingRunnerConfig, model: HookedTransformer
) -> None:
    """Calibrate every folder not yet calibrated (one clean-activation pass for all, on the positions the
    `runner` config trained)."""
    pending = [
        folder
        for folder in folders
        if CALIBRATION_METADATA_KEY not in json.loads((folder / SAE_CFG_FILENAME).read_text())["metadata"]
    ]
    if pending:
        calibrate_saved_saes_at_hooks(
            {recipe.hook_name: pending},
            model,
            context_size=runner.context_size,
            seqpos_slice=runner.seqpos_slice,
        )


def clean_text_metrics(
    folders: list[Path], recipe: Recipe, runner: MaskedMultiSAETrainingRunnerConfig, model: HookedTransformer
) -> dict[str, dict[str, float]]:
    """FVU and L0 of each SAE on 32,768 tokens of clean text no run or calibration read (the calibration split's
    second half), on the window positions the `runner` config trained."""
    texts = load_calibration_texts(show_progress=False)
    unseen = clean_token_activations(
        model,
        recipe.hook_name,
        texts[len(texts) // 2 :],
        CLEAN_TOKENS,
        runner.context_size,
        runner.seqpos_slice,
        show_progress=False,
    )
    metrics = {}
    for folder in folders:
        fvu, l0 = fvu_and_l0(SAE.load_from_disk(str(folder), device="cpu"), unseen)
        metrics[folder.name] = {"clean_fvu": fvu, "clean_l0": l0}
    return metrics


def curve_points(
    eval_dir: Path, recipe: Recipe, arms: dict[str, dict[int, Path]], clean: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """One row per (p, k, training tokens) with the curve metrics from the eval results and on clean text."""
    summary = json.loads((eval_dir / "evaluation_summary.json").read_text())
    rows = []
    for run in recipe.runs:
        for n_tokens, folder in arms[run.name].items():
            metrics = dict(clean[folder.name])
            for record in summary[folder.name]["evals"].values():
                metrics.update(flatten_metrics(json.loads(Path(record["result_path"]).read_text())))
            rows.append(
                {
                    "p": run.masking.p,
                    "k": run.sae.k,  # type: ignore[attr-defined]
                    "training_tokens": n_tokens,
                    **{key: metrics.get(key) for key in CURVE_METRICS},
                }
            )
    return rows


def markdown_table(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """The curve as a markdown table, with the first point where each baseline k passes both training gates."""
    lines = [
        f"Learning curve of `{settings['recipe']}` at `{settings['hook_name']}` (LLM in {settings['llm_dtype']}), "
        f"seed {settings['seed']}, AuxK dead-latent window {settings['dead_feature_window']} steps"
        + "".join(f", `{key}` = {value}" for key, value in settings["overrides"].items())
        + "; generated by `sae-mask learning-curve` from `learning_curve.json`.",
        "",
        "| training tokens | p | k | FVU, clean unseen text | core EV | alive fraction | L0 clean / core "
        "| CE loss recovered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda row: (row["p"], row["k"], row["training_tokens"])):
        lines.append(
            f"| {row['training_tokens']:,} | {row['p']:g} | {row['k']} | {row['clean_fvu']:.3f} "
            f"| {row['explained_variance']:.3f} | {row['frac_alive']:.3f} | {row['clean_l0']:.1f} / {row['l0']:.1f} "
            f"| {row['ce_loss_score']:.3f} |"
        )
    lines.append("")
    gates = ", ".join(f"{LABELS[metric].split(' (')[0]} >= {target:g}" for metric, target in TARGETS.items())
    for p, k in sorted({(row["p"], row["k"]) for row in rows}):
        passing = [
            row["training_tokens"]
            for row in sorted(rows, key=lambda row: row["training_tokens"])
            if (row["p"], row["k"]) == (p, k)
            and all(row[metric] >= target for metric, target in TARGETS.items())
        ]
        verdict = f"from {passing[0]:,} tokens" if passing else "at no point of the curve"
        lines.append(f"- p = {p:g}, k = {k}: passes the training gates ({gates}) {verdict}.")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per curve metric, a line per (p, k), the gates dashed."""
    figure, axes = plt.subplots(2, len(CURVE_METRICS) // 2, figsize=(4 * len(CURVE_METRICS) // 2, 6.8))
    axes = axes.flatten()
    arms = sorted({(row["p"], row["k"]) for row in rows})
    for axis, metric in zip(axes, CURVE_METRICS, strict=True):
        for p, k in arms:
            arm = [row for row in rows if (row["p"], row["k"]) == (p, k) and row[metric] is not None]
            label = f"{'baseline' if p == 0 else f'masked p = {p:g}'}, k = {k}"
            axis.plot(
                [row["training_tokens"] for row in arm],
                [row[metric] for row in arm],
                "o-" if p == 0 else "s--",
                label=label,
            )
        if metric in TARGETS:
            axis.axhline(TARGETS[metric], color="grey", linestyle=":", linewidth=1)
        axis.set_xlabel("training tokens")
        axis.set_title(LABELS[metric], fontsize=10)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run_learning_curve(
    recipe: Recipe, out: str | Path, evals: Sequence[str], arguments: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Train, calibrate and evaluate the curve of `recipe` (from `curve_recipe`) into `out`, running its `evals`,
    and write `learning_curve.json` (its settings: the recipe's, then `arguments`, what the curve was asked for),
    `.png` and `.md`; returns the rows (`curve_points`)."""
    out = Path(out)
    started = time.perf_counter()
    arms: dict[str, dict[int, Path]] = {}
    groups = plan(recipe)
    for group in groups:
        train_group(recipe, group, out)
        arms.update(curve_folders(out, group, recipe))
    folders = [folder for points in arms.values() for folder in points.values()]
    model = load_model(recipe.model_name, dtype=getattr(torch, recipe.llm_dtype))
    runner = groups[0].runner_config(recipe)  # the window settings every group shares
    calibrate(folders, recipe, runner, model)
    eval_settings = recipe.eval_settings()
    evaluate_saes(
        folders,
        evals=list(evals),
        out_dir=out / "evals",
        preset=recipe.eval_preset,
        configs={name: eval_settings[name] for name in evals},
        llm_dtype=recipe.llm_dtype,
    )
    rows = curve_points(out / "evals", recipe, arms, clean_text_metrics(folders, recipe, runner, model))
    settings = {
        "recipe": recipe.name,
        "hook_name": recipe.hook_name,
        "llm_dtype": recipe.llm_dtype,
        "dead_feature_window": runner.dead_feature_window,
        **arguments,
    }
    write_json_atomic(
        out / "learning_curve.json",
        {
            "settings": settings,
            "targets": TARGETS,
            "points": rows,
            "wall_seconds_this_invocation": round(time.perf_counter() - started, 1),
        },
    )
    plot(rows, out / "learning_curve.png")
    write_text_atomic(out / "learning_curve.md", markdown_table(rows, settings))
    return rows
