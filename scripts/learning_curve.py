"""Learning curve on the embedded default: FVU, explained variance, alive fraction, L0 and absorption against
training tokens, for a baseline and a masked SAE that share seed, data order and initialisation.

    python scripts/learning_curve.py --out docs/smollm2_study/learning_curve [--tokens 1000000] [--points 5]

Each arm trains once for `--tokens`, saving SAELens checkpoints at `--points - 1` evenly spaced token counts;
every checkpoint and the final SAE is saved as an inference SAE (as SAELens saves the final one), its threshold
calibrated to L0 = k on clean text, and evaluated: core + absorption (CPU preset), and FVU and L0 on clean text
no run read. Everything is resumable: a finished arm, converted checkpoint or eval is not redone, and an
interrupted arm resumes from its latest complete checkpoint. Writes `<out>/learning_curve.json` and `<out>/learning_curve.png`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sae_lens import SAE, TrainingSAE  # noqa: E402
from sae_lens.constants import SAE_CFG_FILENAME  # noqa: E402
from transformer_lens import HookedTransformer  # noqa: E402

from sae_mask_plugin import MaskingConfig, load_embedded_model, make_runner_config, train_sae  # noqa: E402
from sae_mask_plugin.calibration.threshold import calibrate_saved_saes_at_hooks, fvu_and_l0  # noqa: E402
from sae_mask_plugin.embedded.corpus import load_calibration_texts  # noqa: E402
from sae_mask_plugin.evals.activations import clean_token_activations  # noqa: E402
from sae_mask_plugin.evals.runner import evaluate_saes  # noqa: E402
from sae_mask_plugin.files import staged_directory, write_json_atomic  # noqa: E402
from sae_mask_plugin.report.collect import flatten_metrics  # noqa: E402
from sae_mask_plugin.training import latest_complete_checkpoint  # noqa: E402
from sae_mask_plugin.training.defaults import RUNNER_DEFAULTS  # noqa: E402
from sae_mask_plugin.training.interruption import CHECKPOINT_COMPLETE_FILENAME  # noqa: E402
from sae_mask_plugin.training.metadata import read_masking_record, write_masking_metadata  # noqa: E402

CURVE_METRICS = (
    "clean_fvu",
    "explained_variance",
    "frac_alive",
    "clean_l0",
    "l0",
    "mean_absorption_fraction_score",
)
LABELS = {
    "clean_fvu": "FVU, clean unseen text (lower better)",
    "explained_variance": "explained variance (core eval)",
    "frac_alive": "alive fraction (core eval)",
    "clean_l0": "L0, clean unseen text",
    "l0": "L0 (core eval)",
    "mean_absorption_fraction_score": "mean absorption (lower better)",
}
SEQPOS_SLICE = RUNNER_DEFAULTS["seqpos_slice"]


def train_arm(out: Path, p: float, args: argparse.Namespace) -> Path:
    """Train one arm (resuming an interrupted run); returns its final SAE folder."""
    name = f"p{p:g}"
    final = out / "train" / name
    checkpoints = out / "checkpoints" / name
    if (final / SAE_CFG_FILENAME).is_file():
        return final
    cfg = make_runner_config(
        args.architecture,
        masking=MaskingConfig(p=p) if p > 0 else None,
        sae={"d_sae": args.d_sae, "k": args.k},
        hook_name=args.hook,
        training_tokens=args.tokens,
        n_checkpoints=args.points - 1,
        seed=args.seed,
        output_path=str(final),
        checkpoint_path=str(checkpoints),
    )
    cfg.resume_from_checkpoint = latest_complete_checkpoint(checkpoints)
    train_sae(cfg)
    return final


def inference_checkpoints(out: Path, p: float, final: Path, tokens: int) -> dict[int, Path]:
    """`{training tokens: inference SAE folder}` for every periodic checkpoint of the arm (SAELens names them by
    their token count) and its final SAE."""
    name = f"p{p:g}"
    folders: dict[int, Path] = {}
    for marker in (out / "checkpoints" / name).rglob(CHECKPOINT_COMPLETE_FILENAME):
        checkpoint = marker.parent
        if not checkpoint.name.isdigit():
            continue
        n_tokens = int(checkpoint.name)
        target = out / "saes" / f"{name}-t{n_tokens}"
        if not (target / SAE_CFG_FILENAME).is_file():
            sae = TrainingSAE.load_from_disk(str(checkpoint), device="cpu")
            write_masking_metadata(sae, read_masking_record(final))
            with staged_directory(target) as staging:
                sae.save_inference_model(str(staging))
        folders[n_tokens] = target
    target = out / "saes" / f"{name}-t{tokens}"
    if not (target / SAE_CFG_FILENAME).is_file():
        with staged_directory(target) as staging:
            shutil.copytree(final, staging, dirs_exist_ok=True)
    folders[tokens] = target
    return dict(sorted(folders.items()))


def calibrate(folders: list[Path], hook: str, model: HookedTransformer) -> None:
    """Calibrate every folder not yet calibrated (one clean-activation pass for all, on the window positions
    training kept)."""
    pending = [
        folder
        for folder in folders
        if "threshold_calibration" not in json.loads((folder / SAE_CFG_FILENAME).read_text())["metadata"]
    ]
    if pending:
        calibrate_saved_saes_at_hooks({hook: pending}, model, seqpos_slice=SEQPOS_SLICE)


def clean_text_metrics(
    folders: list[Path], hook: str, model: HookedTransformer
) -> dict[str, dict[str, float]]:
    """FVU and L0 of each SAE on 32,768 tokens of clean text no run or calibration read (the calibration split's
    second half), on the window positions training kept: reconstruction on the text calibration comes from,
    beside the core eval's explained variance on the held-out evaluation texts."""
    texts = load_calibration_texts(show_progress=False)
    unseen = clean_token_activations(
        model, hook, texts[len(texts) // 2 :], 32_768, 128, SEQPOS_SLICE, show_progress=False
    )
    metrics = {}
    for folder in folders:
        fvu, l0 = fvu_and_l0(SAE.load_from_disk(str(folder), device="cpu"), unseen)
        metrics[folder.name] = {"clean_fvu": fvu, "clean_l0": l0}
    return metrics


def curve_points(
    out: Path, arms: dict[float, dict[int, Path]], clean: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """One row per (p, training tokens) with the curve metrics from the eval results and on clean text."""
    summary = json.loads((out / "evals" / "evaluation_summary.json").read_text())
    rows = []
    for p, folders in arms.items():
        for n_tokens, folder in folders.items():
            metrics = dict(clean[folder.name])
            for record in summary[folder.name]["evals"].values():
                metrics.update(flatten_metrics(json.loads(Path(record["result_path"]).read_text())))
            rows.append(
                {"p": p, "training_tokens": n_tokens, **{key: metrics.get(key) for key in CURVE_METRICS}}
            )
    return rows


def plot(rows: list[dict[str, Any]], path: Path, targets: dict[str, float]) -> None:
    figure, axes = plt.subplots(2, len(CURVE_METRICS) // 2, figsize=(4 * len(CURVE_METRICS) // 2, 6.8))
    axes = axes.flatten()
    for axis, metric in zip(axes, CURVE_METRICS, strict=True):
        for p in sorted({row["p"] for row in rows}):
            arm = [row for row in rows if row["p"] == p and row[metric] is not None]
            label = "baseline (p = 0)" if p == 0 else f"masked p = {p:g}"
            axis.plot(
                [row["training_tokens"] for row in arm], [row[metric] for row in arm], "o-", label=label
            )
        if metric in targets:
            axis.axhline(targets[metric], color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel("training tokens")
        axis.set_title(LABELS[metric], fontsize=10)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument(
        "--points", type=int, default=5, help="evaluated token counts, the final one included"
    )
    parser.add_argument("--p", type=float, nargs="+", default=[0.0, 0.3])
    parser.add_argument("--architecture", default="matryoshka_batchtopk")
    parser.add_argument("--d_sae", type=int, default=2048)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--hook", default="blocks.12.hook_resid_post")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.points < 1 or args.tokens < args.points * 2048:
        parser.error("--points must be >= 1 and --tokens at least 2,048 per point")

    started = time.perf_counter()
    arms = {p: inference_checkpoints(args.out, p, train_arm(args.out, p, args), args.tokens) for p in args.p}
    folders = [folder for arm in arms.values() for folder in arm.values()]
    model = load_embedded_model()
    calibrate(folders, args.hook, model)
    evaluate_saes(folders, evals=["core", "absorption"], out_dir=args.out / "evals")
    rows = curve_points(args.out, arms, clean_text_metrics(folders, args.hook, model))
    targets = {"clean_fvu": 0.15, "explained_variance": 0.85, "frac_alive": 0.85}
    write_json_atomic(
        args.out / "learning_curve.json",
        {
            "settings": {key: value for key, value in vars(args).items() if key != "out"},
            "targets": targets,
            "points": rows,
            "wall_seconds_this_invocation": round(time.perf_counter() - started, 1),
        },
    )
    plot(rows, args.out / "learning_curve.png", targets)
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
