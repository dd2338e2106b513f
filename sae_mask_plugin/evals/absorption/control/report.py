"""Summaries of the control's cells: `results.json`, the two plots and the README (its numbers read from
`results.json`)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402

from sae_mask_plugin.files import atomic_file, write_json_atomic, write_text_atomic  # noqa: E402

MEASURED_KEYS = {
    "absorption fraction, SAEBench gates": "mean_absorption_fraction_saebench",
    "absorption fraction, d-scaled gates": "mean_absorption_fraction_scaled",
    "full absorption, SAEBench gates": "mean_full_absorption_rate_saebench",
    "full absorption, d-scaled gates": "mean_full_absorption_rate_scaled",
    "absorption fraction, k = 1 main latent only": "mean_absorption_fraction_k1",
    "full absorption, k = 1 main latent only": "mean_full_absorption_rate_k1",
}
HEADLINE = "mean_absorption_fraction_saebench"
LOW_RANDOM_SCORE = 0.1
"""The random-SAE null "scores low" when its mean measured absorption fraction stays below this."""


def interval(values: list[float], confidence: float = 0.95) -> dict[str, float | int | None]:
    """Mean and a t-interval over seeds."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return {"mean": mean, "low": None, "high": None, "n": len(values)}
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(values)}


def spearman(records: list[dict[str, Any]], key: str) -> dict[str, float | int | None]:
    """Spearman of a measured score against true intrinsic absorption over cells where both exist."""
    pairs = [
        (r["measured"][key], r["true_absorption_intrinsic"])
        for r in records
        if r["measured"][key] is not None and r["true_absorption_intrinsic"] is not None
    ]
    if len(pairs) < 3:
        return {"rho": None, "p_value": None, "n": len(pairs)}
    result = stats.spearmanr([m for m, _ in pairs], [t for _, t in pairs])
    return {"rho": float(result.statistic), "p_value": float(result.pvalue), "n": len(pairs)}


def cell_row(record: dict[str, Any]) -> dict[str, Any]:
    spec = record["spec"]
    modifier = spec["modifier"] or {"kind": None, "p": 0.0}
    return {
        "name": record["name"],
        "architecture": spec["architecture"],
        "hidden_dim": spec["hidden_dim"],
        "width": spec["width"],
        "k": spec["k"],
        "seed": spec["seed"],
        "modifier": modifier["kind"],
        "p": modifier["p"],
        "explained_variance": record["explained_variance"],
        "l0": record["l0"],
        "true_absorption_intrinsic": record["true_absorption_intrinsic"],
        "true_absorption_contextual": record["true_absorption_contextual"],
        "letters_probe_f1_passing": record["measured"]["num_letters_probe_f1_passing"],
        **{key: record["measured"][key] for key in MEASURED_KEYS.values()},
    }


def mechanism_curves(
    records: list[dict[str, Any]], kinds: list[str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """True absorption vs p per modifier and hierarchy, mean and interval over seeds; p = 0 is shared."""
    values: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for record in records:
        modifier = record["spec"]["modifier"]
        for hierarchy in ("intrinsic", "contextual"):
            truth = record[f"true_absorption_{hierarchy}"]
            if truth is None:
                continue
            for kind in kinds if modifier is None else [modifier["kind"]]:
                p = 0.0 if modifier is None else modifier["p"]
                values[(kind, hierarchy, p)].append(truth)
    curves: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for (kind, hierarchy, p), truths in sorted(values.items()):
        curves[kind][hierarchy].append({"p": p, **interval(truths)})
    return {kind: dict(by_hierarchy) for kind, by_hierarchy in curves.items()}


def summarise(records: dict[str, list[dict[str, Any]]], kinds: list[str]) -> dict[str, Any]:
    grid, random, mechanism = records["grid"], records["random"], records["mechanism"]
    random_scores = [r["measured"][HEADLINE] for r in random if r["measured"][HEADLINE] is not None]
    trained_scores = [r["measured"][HEADLINE] for r in grid if r["measured"][HEADLINE] is not None]
    correlation = spearman(grid, HEADLINE)
    random_mean = statistics.mean(random_scores) if random_scores else None
    return {
        "spearman_measured_vs_true": correlation,
        "spearman_by_score": {label: spearman(grid, key) for label, key in MEASURED_KEYS.items()},
        "random_sae_score": {
            "mean": random_mean,
            "max": max(random_scores) if random_scores else None,
            "n": len(random_scores),
            "n_unmeasured": len(random) - len(random_scores),
            "true_absorption_mean": _mean([r["true_absorption_intrinsic"] for r in random]),
        },
        "trained_sae_score": {"mean": _mean(trained_scores), "n": len(trained_scores)},
        "pass": {
            "rank_tracks_truth": correlation["rho"] is not None
            and correlation["rho"] > 0
            and correlation["p_value"] < 0.05,
            "random_sae_scores_low": random_mean is not None and random_mean < LOW_RANDOM_SCORE,
        },
        "low_random_score_threshold": LOW_RANDOM_SCORE,
        "true_absorption_range": [
            min(_present(r["true_absorption_intrinsic"] for r in grid), default=None),
            max(_present(r["true_absorption_intrinsic"] for r in grid), default=None),
        ],
        "mechanism": mechanism_curves(mechanism, kinds),
        "grid": [cell_row(r) for r in grid],
        "random": [cell_row(r) for r in random],
        "mechanism_cells": [cell_row(r) for r in mechanism],
    }


def _present(values: Any) -> list[float]:
    return [v for v in values if v is not None]


def _mean(values: list[float | None]) -> float | None:
    present = _present(values)
    return statistics.mean(present) if present else None


def plot_scatter(results: dict[str, Any], path: Path) -> None:
    """Measured (SAEBench absorption fraction) vs true absorption, one point per trained cell, random SAEs grey."""
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    markers = {"topk": "o", "batchtopk": "s", "matryoshka_batchtopk": "^"}
    dims = sorted({row["hidden_dim"] for row in results["grid"]})
    colours = dict(zip(dims, ["tab:blue", "tab:orange", "tab:green", "tab:red"], strict=False))
    for row in results["grid"] + results["random"]:
        if row[HEADLINE] is None or row["true_absorption_intrinsic"] is None:
            continue
        trained = row in results["grid"]
        axis.scatter(
            row["true_absorption_intrinsic"],
            row[HEADLINE],
            marker=markers.get(row["architecture"], "o"),
            color=colours[row["hidden_dim"]] if trained else "lightgrey",
            edgecolor="black" if trained else "grey",
            linewidth=0.4,
            s=28,
        )
    for arch, marker in markers.items():
        if any(row["architecture"] == arch for row in results["grid"]):
            axis.scatter([], [], marker=marker, color="white", edgecolor="black", label=arch)
    for d, colour in colours.items():
        axis.scatter([], [], marker="o", color=colour, label=f"d = {d}")
    axis.scatter([], [], marker="o", color="lightgrey", edgecolor="grey", label="random init")
    rho = results["spearman_measured_vs_true"]["rho"]
    axis.set_title(
        f"Measured vs true absorption (Spearman {rho:.2f})" if rho is not None else "Measured vs true"
    )
    axis.set_xlabel("true absorption (known features)")
    axis.set_ylabel("SAEBench mean absorption fraction")
    axis.legend(fontsize=7)
    figure.tight_layout()
    with atomic_file(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=130)
    plt.close(figure)


def plot_mechanism(results: dict[str, Any], path: Path) -> None:
    """True absorption vs p per modifier, intrinsic and contextual hierarchy side by side, 95 % intervals."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    for axis, hierarchy in zip(axes, ("intrinsic", "contextual"), strict=True):
        for kind, curves in results["mechanism"].items():
            points = curves.get(hierarchy, [])
            ps = [point["p"] for point in points]
            means = [point["mean"] for point in points]
            errors = [
                [
                    m - (pt["low"] if pt["low"] is not None else m)
                    for m, pt in zip(means, points, strict=True)
                ],
                [
                    (pt["high"] if pt["high"] is not None else m) - m
                    for m, pt in zip(means, points, strict=True)
                ],
            ]
            axis.errorbar(ps, means, yerr=errors, marker="o", capsize=3, label=kind.replace("_", " "))
        axis.set_title(f"{hierarchy} hierarchy")
        axis.set_xlabel("p (training-time modifier)")
    axes[0].set_ylabel("true absorption")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    with atomic_file(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=130)
    plt.close(figure)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def readme_text(results: dict[str, Any], config: dict[str, Any]) -> str:
    """The README: method, then every sentence with a number filled in from `results`."""
    correlation = results["spearman_measured_vs_true"]
    random_score = results["random_sae_score"]
    low, high = results["true_absorption_range"]
    lines = [
        "# Absorption control: SAEBench's absorption on SAEs whose truth is known",
        "",
        "Generated by `python -m sae_mask_plugin.evals.absorption.control`; every number below is read from",
        "`results.json` (per-cell records in `cells/`).",
        "",
        "## Setup",
        "",
        "SAELens's synthetic toolkit builds a world of true features: 26 token-intrinsic *letter* parents, each",
        f"with {config['world']['words_per_letter']} mutually exclusive *word* children (a token is at most one"
        ' word; the absorption-prone structure of "A is for Absorption"), a contextual hierarchy of'
        f" {config['world']['context_parents']} parents with {config['world']['context_children']} children each,"
        f" {config['world']['background_features']} independent contextual features and one mask feature"
        " (`FeatureDictionary`, `HierarchyNode` + `hierarchy_modifier`, `ActivationGenerator`). SAEs from SAELens's"
        f" registry ({', '.join(config['architectures'])}) are trained with `train_toy_sae` over hidden size d"
        f" {config['hidden_dims']}, width {config['widths']} and k {config['ks']}, seeds {config['seeds']}"
        f" ({config['training_samples']:,} samples each).",
        "",
        "- **True absorption** (per letter, averaged over letters): among samples where a word fires, the share",
        "  where the letter's matched latent is silent while the word's matched latent fires with a decoder",
        f"  cosine >= {config['measure']['true_cos_threshold']} to the letter direction (latents matched to",
        "  features one to one by decoder cosine).",
        "- **Measured absorption**: SAEBench's pipeline unchanged on the activations: its 26-way linear probe,",
        "  k-sparse probing with feature-split selection of each letter's main latents, and",
        "  `FeatureAbsorptionCalculator` on the probe-positive test words (mean absorption fraction over letters",
        f"  with probe F1 > {config['measure']['min_probe_f1']}), with SAEBench's cosine gates and with gates",
        "  scaled by sqrt(2304 / d).",
        "- **Random null**: the same SAEs at initialisation, measured the same way.",
        "- **Mechanism test**: SAEs of one shape trained with a masking-like modifier at probability p, evaluated",
        "  on clean data: *replacement* (all features of a sample replaced by the mask feature), *context",
        "  dropout* (each contextual feature dropped, intrinsic ones kept), *co-occurrence breaking* (a child's",
        "  parent switched off).",
        "",
        "![measured vs true](scatter_measured_vs_true.png)",
        "![true absorption vs p](mechanism_true_absorption_vs_p.png)",
        "",
        "## What we found",
        "",
        f"- Across {correlation['n']} trained SAEs, true absorption spans {_fmt(low)}-{_fmt(high)}; SAEBench's"
        f" measured absorption fraction rank-tracks it with Spearman {_fmt(correlation['rho'])}"
        f" (p = {_fmt(correlation['p_value'], 3)}).",
    ]
    for label, value in results["spearman_by_score"].items():
        lines.append(f"  - {label}: Spearman {_fmt(value['rho'])} (n = {value['n']})")
    lines.append(
        f"- Randomly initialised SAEs score {_fmt(random_score['mean'])} on average (max"
        f" {_fmt(random_score['max'])}, {random_score['n']} measured, {random_score['n_unmeasured']} without any"
        f" letter passing) against {_fmt(results['trained_sae_score']['mean'])} for the trained ones; the null"
        f" {'stays' if results['pass']['random_sae_scores_low'] else 'does not stay'} below"
        f" {results['low_random_score_threshold']}."
    )
    if "gate" in results:
        gate = results["gate"]
        lines.append(f"- Per-letter signal gate: {gate['summary']}")
    for kind, curves in results["mechanism"].items():
        parts = []
        for hierarchy, points in curves.items():
            first, last = points[0], points[-1]
            parts.append(
                f"{hierarchy} {_fmt(first['mean'])} at p = {first['p']:g} -> {_fmt(last['mean'])}"
                f" [{_fmt(last['low'])}, {_fmt(last['high'])}] at p = {last['p']:g}"
            )
        lines.append(f"- {kind.replace('_', ' ').capitalize()}: true absorption {'; '.join(parts)}.")
    lines.append("")
    return "\n".join(lines)


def write_outputs(results: dict[str, Any], config: dict[str, Any], out_dir: Path) -> None:
    write_json_atomic(out_dir / "results.json", {"config": config, **results})
    plot_scatter(results, out_dir / "scatter_measured_vs_true.png")
    plot_mechanism(results, out_dir / "mechanism_true_absorption_vs_p.png")
    write_text_atomic(out_dir / "README.md", readme_text(results, config))
