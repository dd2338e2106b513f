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
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from research.absorption_control.config import MATCHED_COUNT_REPLACEMENT  # noqa: E402
from sae_mask_plugin.evals.absorption.gate import (  # noqa: E402
    MIN_PASSING_LETTERS,
    AbsorptionGateConfig,
    LetterRecord,
    headline_variant,
    summarize,
)
from sae_mask_plugin.evals.absorption.letter_set import (  # noqa: E402
    FIXED_K1_SCORE,
    FIXED_PASSING,
    FixedLetterSet,
    LetterScore,
    LetterSetRule,
    fix_letter_set,
    letter_set_scores,
)
from sae_mask_plugin.files import atomic_file, write_json_atomic, write_text_atomic  # noqa: E402
from sae_mask_plugin.report.stats import Summary  # noqa: E402

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


def interval(values: list[float]) -> dict[str, float | int | None]:
    """Mean and 95 % t-interval over seeds (`report.stats.Summary`), as `mean`, `low`, `high` and `n`."""
    summary = Summary.of(values)
    return {"mean": summary.mean, "low": summary.low, "high": summary.high, "n": summary.n}


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
        "training_samples": record.get("training_samples"),
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


KIND_LABELS = {
    "replacement": "replacement",
    "context_dropout": "context dropout",
    "cooccurrence_breaking": "co-occurrence breaking",
    MATCHED_COUNT_REPLACEMENT: "replacement at a matched count of real samples (trained 1/(1-p) times longer)",
}
"""How the README names each modifier kind."""


def mechanism_at_p(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per modifier and p > 0: the SAEs' true intrinsic absorption (mean and 95 % t-interval over seeds), their
    training samples, and the paired difference from the unmodified SAE of the same seed."""
    baselines = {r["spec"]["seed"]: r for r in records if r["spec"]["modifier"] is None}
    arms: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        modifier = record["spec"]["modifier"]
        if modifier is not None and record["true_absorption_intrinsic"] is not None:
            arms[(modifier["kind"], modifier["p"])].append(record)
    rows = []
    for (kind, p), arm in sorted(arms.items()):
        paired = [
            (baselines[r["spec"]["seed"]], r)
            for r in arm
            if r["spec"]["seed"] in baselines
            and baselines[r["spec"]["seed"]]["true_absorption_intrinsic"] is not None
        ]
        rows.append(
            {
                "kind": kind,
                "p": p,
                "true_absorption": interval([r["true_absorption_intrinsic"] for r in arm]),
                "unmodified_true_absorption": interval([b["true_absorption_intrinsic"] for b, _ in paired]),
                "paired_difference": interval(
                    [r["true_absorption_intrinsic"] - b["true_absorption_intrinsic"] for b, r in paired]
                ),
                "training_samples": sorted({r.get("training_samples") for r in arm} - {None}),
            }
        )
    return rows


DROPPED_RATES = {
    "headline cosine gates, as the eval scores it": "dropped_rate_k1_headline",
    "SAEBench's cosine gates": "dropped_rate_k1",
}
"""The eval's dropped-word rate with the k = 1 main latent, by the cosine gate that decides "aligned with the
probe" (the absorber gate), and its per-letter key in a cell."""


def dropped_validation(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per `DROPPED_RATES` entry: the eval's dropped-word rate against the true dropped share, over the letters
    with a measured rate: per SAE (means over the same letters) and per letter pooled over SAEs, each Spearman with
    n, p and a bootstrap interval, and the mean measured and true shares with their mean absolute difference per
    letter. Cells recorded without either are left out (`cells`: how many count)."""
    checks = {}
    for label, key in DROPPED_RATES.items():
        per_cell = [
            [
                (letter[key], letter["true_dropped"])
                for letter in record["measured"]["letters"]
                if letter.get(key) is not None and letter.get("true_dropped") is not None
            ]
            for record in records
        ]
        per_cell = [pairs for pairs in per_cell if pairs]
        per_letter = [pair for pairs in per_cell for pair in pairs]
        checks[label] = {
            "cells": len(per_cell),
            "spearman_per_sae": spearman_with_interval(
                [
                    (statistics.mean(m for m, _ in pairs), statistics.mean(t for _, t in pairs))
                    for pairs in per_cell
                ]
            ),
            "spearman_per_letter": spearman_with_interval(per_letter),
            "mean_measured": _mean([m for m, _ in per_letter]),
            "mean_true": _mean([t for _, t in per_letter]),
            "mean_absolute_difference": _mean([abs(m - t) for m, t in per_letter]),
        }
    return checks


def _shape(record: dict[str, Any]) -> tuple[str, int, int]:
    spec = record["spec"]
    return spec["architecture"], spec["hidden_dim"], spec["width"]


def gate_of(record: dict[str, Any], random_record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The per-letter signal gate (`evals/absorption/gate.py`) on one cell, with the headline's cosine-gate
    variant for its d and the random SAE of the same shape as the null; None for cells recorded without the
    k = 1 latent numbers."""
    letters = record["measured"]["letters"]
    if (
        "k1_f1" not in letters[0]
        or random_record is None
        or "k1_f1" not in random_record["measured"]["letters"][0]
    ):
        return None
    d_model = record["spec"]["hidden_dim"]
    variant = headline_variant(d_model)
    random_f1 = {letter["letter"]: letter["k1_f1"] for letter in random_record["measured"]["letters"]}
    letter_records = [
        LetterRecord(
            letter=letter["letter"],
            probe_f1=letter["probe_f1"],
            num_probe_positive_words=letter["num_probe_true_positives"],
            main_latent_precision=letter["k1_precision"],
            main_latent_recall=letter["k1_recall"],
            main_latent_f1=letter["k1_f1"],
            main_latent_cos=letter["k1_cos_probe_dec"],
            main_latents_recall_on_probe_positive=letter["main_latents_recall_on_probe_positive"],
            absorption_fraction=letter[f"absorption_fraction_{variant}"],
            full_absorption_rate=letter[f"full_absorption_rate_{variant}"],
            k1_absorption_fraction=letter.get("absorption_fraction_k1"),
            k1_full_absorption_rate=letter.get("full_absorption_rate_k1"),
            null_other_letter_absorption_fraction=letter[f"absorption_fraction_other_letter_{variant}"],
            random_sae_main_latent_f1=random_f1[letter["letter"]],
        )
        for letter in letters
    ]
    summary = summarize(letter_records, AbsorptionGateConfig(d_model=d_model))
    passing = set(summary.passing_letters)
    truth = {letter["letter"]: letter["true_absorption"] for letter in letters}
    return {
        "variant": variant,
        **summary.to_dict(),
        "true_absorption_passing_letters": _mean([truth[x] for x in passing]),
        "true_absorption_failing_letters": _mean([truth[x] for x in truth if x not in passing]),
    }


GATED_SCORES = {
    "k = 1 full-absorption rate (the headline)": "headline_k1_full_absorption_rate",
    "k = 1 absorption fraction": "headline_k1_absorption_fraction",
    "absorption fraction (SAEBench)": "headline_absorption_fraction",
    "full-absorption rate (SAEBench)": "headline_full_absorption_rate",
}
"""The gated scores whose Spearman with the truth the control publishes, by label (`AbsorptionGateSummary` keys)."""
BOOTSTRAP_RESAMPLES = 2000


def spearman_with_interval(pairs: list[tuple[float, float]], seed: int = 0) -> dict[str, Any]:
    """Spearman of (measured, true) pairs with its p-value, n and a 95 % percentile bootstrap interval over the
    pairs (`BOOTSTRAP_RESAMPLES` resamples, seeded; resamples with a constant side are skipped)."""
    if len(pairs) < 3:
        return {"rho": None, "p_value": None, "n": len(pairs), "ci_low": None, "ci_high": None}
    measured, truth = np.array(pairs).T
    result = stats.spearmanr(measured, truth)
    rng = np.random.default_rng(seed)
    resampled = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        index = rng.integers(0, len(pairs), len(pairs))
        if np.ptp(measured[index]) > 0 and np.ptp(truth[index]) > 0:
            resampled.append(stats.spearmanr(measured[index], truth[index]).statistic)
    low, high = np.percentile(resampled, [2.5, 97.5]) if resampled else (None, None)
    return {
        "rho": float(result.statistic),
        "p_value": float(result.pvalue),
        "n": len(pairs),
        "ci_low": None if low is None else float(low),
        "ci_high": None if high is None else float(high),
    }


def gate_results(grid: list[dict[str, Any]], random: list[dict[str, Any]]) -> dict[str, Any]:
    """The gate on every trained cell that recorded its inputs: how many are measurable, and whether the gated
    headline rank-tracks the truth."""
    random_by_shape = {_shape(r): r for r in random}
    gated = [(r, gate_of(r, random_by_shape.get(_shape(r)))) for r in grid]
    gated = [(r, g) for r, g in gated if g is not None]
    measurable = [(r, g) for r, g in gated if g["headline_absorption_fraction"] is not None]
    return {
        "cells_gated": len(gated),
        "cells_measurable": len(measurable),
        "mean_letters_passing": _mean([g["letters_passing"] for _, g in gated]),
        "mean_letters_eligible": _mean([g["letters_eligible"] for _, g in gated]),
        "min_passing_letters": MIN_PASSING_LETTERS,
        "spearman_gated_vs_true": {
            label: spearman_with_interval(
                [(g[key], r["true_absorption_intrinsic"]) for r, g in measurable if g[key] is not None]
            )
            for label, key in GATED_SCORES.items()
        },
        "true_absorption_passing_letters": _mean([g["true_absorption_passing_letters"] for _, g in gated]),
        "true_absorption_failing_letters": _mean([g["true_absorption_failing_letters"] for _, g in gated]),
        "letters_failing_by_reason": {
            reason: sum(g["letters_failing_by_reason"].get(reason, 0) for _, g in gated)
            for reason in sorted({reason for _, g in gated for reason in g["letters_failing_by_reason"]})
        },
        "by_cell": {r["name"]: g for r, g in gated},
    }


def all_trained_spearman(trained: list[dict[str, Any]], random: list[dict[str, Any]]) -> dict[str, Any]:
    """Every score's Spearman with the truth over every trained SAE, the mechanism test's modified ones included
    (their truth is as known as the grid's, and spans what the modifiers remove): ungated as `spearman`, gated as
    `spearman_with_interval` over the SAEs the gate measures."""
    gate = gate_results(trained, random)
    return {
        "cells": len(trained),
        "spearman_by_score": {label: spearman(trained, key) for label, key in MEASURED_KEYS.items()},
        "cells_measurable": gate["cells_measurable"],
        "spearman_gated_vs_true": gate["spearman_gated_vs_true"],
    }


COMPARISON_KIND = "cooccurrence_breaking"
"""The modifier whose SAEs the paired-comparison check sets against the unmodified ones: it lowers the true
intrinsic absorption by a known amount (the mechanism test)."""


def comparison_check(mechanism: list[dict[str, Any]], random: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The study's absorption comparison run where the truth is known. Per p of `COMPARISON_KIND`: the letters
    passing the gate in all but one of the unmodified SAEs' seeds are fixed (`letter_set.LetterSetRule`), each
    seed's modified SAE is paired with its unmodified one and both are scored on exactly those letters; the
    measured k = 1 full-absorption rate's paired difference (mean and 95 % t-interval over seeds) is set beside the
    true absorption's difference on the same letters, with the letters passing per arm. With four or more
    unmodified seeds, their first half is also compared with their second half the same way (equal truth: the
    interval should cover zero). An entry says why where it cannot be made."""
    random_by_shape = {_shape(r): r for r in random}
    baselines = {r["spec"]["seed"]: r for r in mechanism if r["spec"]["modifier"] is None}
    gates = {
        r["name"]: gate_of(r, random_by_shape.get(_shape(r)))
        for r in mechanism
        if r["spec"]["modifier"] is None or r["spec"]["modifier"]["kind"] == COMPARISON_KIND
    }
    if len(baselines) < 2 or any(gates[r["name"]] is None for r in baselines.values()):
        return []
    checks = []
    letter_set = _fixed_from(list(baselines.values()), gates)
    for p in sorted({r["spec"]["modifier"]["p"] for r in mechanism if r["spec"]["modifier"]}):
        arms = {
            r["spec"]["seed"]: r
            for r in mechanism
            if r["spec"]["modifier"] == {"kind": COMPARISON_KIND, "p": p}
        }
        pairs = [(baselines[seed], arms[seed]) for seed in sorted(arms.keys() & baselines.keys())]
        checks.append(_paired_difference({"kind": COMPARISON_KIND, "p": p}, pairs, letter_set, gates))
    if len(baselines) >= 4:
        seeds = sorted(baselines)
        first, second = seeds[: len(seeds) // 2], seeds[len(seeds) // 2 : 2 * (len(seeds) // 2)]
        halves = [(baselines[a], baselines[b]) for a, b in zip(first, second, strict=True)]
        entry = {"kind": "unmodified", "p": 0.0, "equal_truth": True}
        checks.append(_paired_difference(entry, halves, _fixed_from([a for a, _ in halves], gates), gates))
    return checks


def _fixed_from(baselines: list[dict[str, Any]], gates: dict[str, Any]) -> FixedLetterSet:
    """The letters passing the gate in all but one of `baselines` (at least one)."""
    rule = LetterSetRule(min_baseline_seeds=max(1, len(baselines) - 1))
    return fix_letter_set([gates[r["name"]]["passing_letters"] for r in baselines], rule)


def _paired_difference(
    entry: dict[str, Any],
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    letter_set: FixedLetterSet,
    gates: dict[str, Any],
) -> dict[str, Any]:
    """One check: (reference, compared) SAEs paired by seed, scored on `letter_set`; the differences compared −
    reference of the measured k = 1 rate, the truth and the letters passing, and how the measured one reads."""
    entry = {**entry, "seeds": [b["spec"]["seed"] for _, b in pairs], "letter_set": letter_set.to_dict()}
    if not letter_set.measurable or len(pairs) < 2:
        return {
            **entry,
            "reason": f"{len(pairs)} paired seeds (2 needed), {len(letter_set.letters)} letters in the fixed set"
            f" ({letter_set.rule.min_letters} needed)",
        }
    scored = [
        [_on_letter_set(record, gates[record["name"]], letter_set) for record in pair] for pair in pairs
    ]
    differences = {
        quantity: interval([compared[quantity] - reference[quantity] for reference, compared in scored])
        for quantity in ("measured", "true", "letters_passing")
    }
    measured, true = differences["measured"], differences["true"]
    low, high = measured["low"], measured["high"]
    return {
        **entry,
        **{f"{quantity}_difference": value for quantity, value in differences.items()},
        "sign_recovered": bool(measured["mean"] * true["mean"] > 0),
        "measured_interval_excludes_zero": bool(low > 0 or high < 0),
        "true_difference_inside_measured_interval": bool(low <= true["mean"] <= high),
    }


def _on_letter_set(
    record: dict[str, Any], gate: dict[str, Any], letter_set: FixedLetterSet
) -> dict[str, float]:
    """One SAE on a fixed letter set: its measured k = 1 full-absorption rate (`letter_set_scores`), the true
    absorption averaged over the same letters, and how many of them pass its own gate."""
    letters = {letter["letter"]: letter for letter in record["measured"]["letters"]}
    scores = {
        letter: LetterScore(
            passed=letter in gate["passing_letters"],
            k1_full_absorption_rate=entry["full_absorption_rate_k1"],
            absorption_fraction=entry[f"absorption_fraction_{gate['variant']}"],
        )
        for letter, entry in letters.items()
    }
    fixed = letter_set_scores(scores, letter_set)
    return {
        "measured": fixed[FIXED_K1_SCORE],
        "true": statistics.mean(letters[letter]["true_absorption"] for letter in letter_set.letters),
        "letters_passing": fixed[FIXED_PASSING],
    }


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
        "gate": gate_results(grid, random),
        "all_trained": all_trained_spearman(_trained_once(grid, mechanism), random),
        "mechanism": mechanism_curves(mechanism, kinds),
        "mechanism_at_p": mechanism_at_p(mechanism),
        "dropped_validation": dropped_validation(_trained_once(grid, mechanism)),
        "comparison_check": comparison_check(mechanism, random),
        "grid": [cell_row(r) for r in grid],
        "random": [cell_row(r) for r in random],
        "mechanism_cells": [cell_row(r) for r in mechanism],
    }


def _trained_once(*parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every trained cell of `parts` once (the unmodified mechanism SAE is also a grid cell)."""
    return list({r["name"]: r for part in parts for r in part if r["trained"]}.values())


def _present(values: Any) -> list[float]:
    return [v for v in values if v is not None]


def _mean(values: list[float | None]) -> float | None:
    present = _present(values)
    return statistics.mean(present) if present else None


SCATTER_PANELS = {
    HEADLINE: "SAEBench mean absorption fraction (as run)",
    "mean_full_absorption_rate_k1": "full absorption, k = 1 main latent only",
}


def plot_scatter(results: dict[str, Any], path: Path) -> None:
    """Measured vs true absorption, one point per trained cell (random SAEs grey): SAEBench's score as it runs,
    and the full-absorption rate with the k = 1 main latent only."""
    figure, axes = plt.subplots(1, len(SCATTER_PANELS), figsize=(10, 4.3))
    markers = {"topk": "o", "batchtopk": "s", "matryoshka_batchtopk": "^"}
    dims = sorted({row["hidden_dim"] for row in results["grid"]})
    colours = dict(zip(dims, ["tab:blue", "tab:orange", "tab:green", "tab:red"], strict=False))
    rows = [(row, True) for row in results["grid"]] + [(row, False) for row in results["random"]]
    for axis, (key, label) in zip(axes, SCATTER_PANELS.items(), strict=True):
        for row, trained in rows:
            if row[key] is None or row["true_absorption_intrinsic"] is None:
                continue
            axis.scatter(
                row["true_absorption_intrinsic"],
                row[key],
                marker=markers.get(row["architecture"], "o"),
                color=colours[row["hidden_dim"]] if trained else "lightgrey",
                edgecolor="black" if trained else "grey",
                linewidth=0.4,
                s=28,
            )
        rho = (
            results["spearman_by_score"]
            .get(next(name for name, value in MEASURED_KEYS.items() if value == key), {})
            .get("rho")
        )
        axis.set_title(f"Spearman {rho:.2f}" if rho is not None else "Spearman n/a", fontsize=10)
        axis.set_xlabel("true absorption (known features)")
        axis.set_ylabel(label)
    for arch, marker in markers.items():
        if any(row["architecture"] == arch for row in results["grid"]):
            axes[0].scatter([], [], marker=marker, color="white", edgecolor="black", label=arch)
    for d, colour in colours.items():
        axes[0].scatter([], [], marker="o", color=colour, label=f"d = {d}")
    axes[0].scatter([], [], marker="o", color="lightgrey", edgecolor="grey", label="random init")
    axes[0].legend(fontsize=7)
    figure.suptitle("Measured vs true absorption, one point per SAE")
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


def comparison_line(check: dict[str, Any]) -> str:
    """One README bullet: the study's paired absorption comparison against a known difference in truth."""
    if check.get("equal_truth"):
        label = "unmodified SAEs of one half of the seeds against the other half: equal truth"
    else:
        label = f"{check['kind'].replace('_', ' ')} at p {check['p']:g} against the unmodified SAEs"
    if "reason" in check:
        return f"- Paired comparison, {label}: not made ({check['reason']})."
    measured, true, letters = check["measured_difference"], check["true_difference"], check["letter_set"]
    if check.get("equal_truth"):
        reading = "should find no difference"
    elif check["sign_recovered"]:
        reading = "recovers the sign of the true difference"
    else:
        reading = "does not recover the sign of the true difference"
    width = (
        "its interval excludes zero"
        if check["measured_interval_excludes_zero"]
        else f"its interval includes zero at {measured['n']} seeds"
    )
    return (
        f"- Paired comparison as the study runs it ({label}; {letters['n_letters']} letters fixed from the"
        f" unmodified SAEs, {letters['rule']['text']}; {measured['n']} paired seeds): the measured k = 1"
        f" full-absorption rate differs by {_fmt(measured['mean'], 3)} [{_fmt(measured['low'], 3)},"
        f" {_fmt(measured['high'], 3)}] where the true absorption on the same letters differs by"
        f" {_fmt(true['mean'], 3)} [{_fmt(true['low'], 3)}, {_fmt(true['high'], 3)}]: it {reading}, the true"
        f" difference lies {'inside' if check['true_difference_inside_measured_interval'] else 'outside'} the"
        f" measured interval, and {width}. Letters passing per arm differ by {_fmt(check['letters_passing_difference']['mean'], 2)}."
    )


def mechanism_line(row: dict[str, Any]) -> str:
    """One README bullet: a modifier's true intrinsic absorption at one p beside the unmodified SAEs', paired."""
    true, base, difference = (
        row["true_absorption"],
        row["unmodified_true_absorption"],
        row["paired_difference"],
    )
    samples = ", ".join(f"{n:,}" for n in row["training_samples"])
    trained_on = f" ({samples} training samples)" if samples else ""
    return (
        f"- True intrinsic absorption, {KIND_LABELS[row['kind']]} at p {row['p']:g}{trained_on}:"
        f" {_fmt(true['mean'], 3)} [{_fmt(true['low'], 3)}, {_fmt(true['high'], 3)}] over {true['n']} seeds,"
        f" against {_fmt(base['mean'], 3)} unmodified; paired difference {_fmt(difference['mean'], 3)}"
        f" [{_fmt(difference['low'], 3)}, {_fmt(difference['high'], 3)}] ({difference['n']} seeds)."
    )


def dropped_line(label: str, check: dict[str, Any]) -> str:
    """One README bullet: the eval's dropped-word rate (with `label`'s cosine gates) against the true dropped share."""
    if not check["cells"]:
        return f"- Dropped-word rate, {label}, against the truth: not recorded in these cells."
    per_sae, per_letter = check["spearman_per_sae"], check["spearman_per_letter"]
    return (
        f"- Dropped-word rate (k = 1 main latent, {label}) against the true dropped share, over {check['cells']}"
        f" trained SAEs: Spearman per SAE {_fmt(per_sae['rho'])} (n {per_sae['n']}, p"
        f" {_fmt(per_sae['p_value'], 3)}, [{_fmt(per_sae['ci_low'])}, {_fmt(per_sae['ci_high'])}]), per letter"
        f" {_fmt(per_letter['rho'])} (n {per_letter['n']}, p {_fmt(per_letter['p_value'], 3)},"
        f" [{_fmt(per_letter['ci_low'])}, {_fmt(per_letter['ci_high'])}]); measured {_fmt(check['mean_measured'], 3)}"
        f" against true {_fmt(check['mean_true'], 3)} on average, mean absolute difference per letter"
        f" {_fmt(check['mean_absolute_difference'], 3)}."
    )


def _zipf_text(config: dict[str, Any]) -> str:
    exponent = config["world"]["word_zipf_exponent"]
    return f", Zipf-weighted with exponent {exponent:g}" if exponent else ""


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
        "Generated by `python -m research.absorption_control`; every number below is read from",
        "`results.json` (per-cell records in `cells/`).",
        "",
        "## Setup",
        "",
        "SAELens's synthetic toolkit builds a world of true features: 26 token-intrinsic *letter* parents, each",
        f"with {config['world']['words_per_letter']} mutually exclusive *word* children{_zipf_text(config)} (a"
        ' token is at most one word; the absorption-prone structure of "A is for Absorption"), a contextual'
        " hierarchy of"
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
        "- **Mechanism test**: SAEs of one shape"
        f" ({config['mechanism_architecture']}, d {config['mechanism_hidden_dim']}, width"
        f" {config['mechanism_width']}, k {config['mechanism_k']}; seeds"
        f" {config['mechanism_seeds'] or config['seeds']}) trained with a masking-like modifier at probability p",
        f"  {config['mechanism_ps']}, evaluated on clean data: *replacement* (all features of a sample replaced by"
        " the mask feature), *context dropout* (each contextual feature dropped, intrinsic ones kept),"
        " *co-occurrence breaking* (a child's parent switched off), and *replacement at a matched count of real"
        " samples* (replacement trained 1/(1-p) times longer, so it sees as many unreplaced samples as the"
        " unmodified SAE); modifiers run here: "
        + ", ".join(KIND_LABELS[kind].split(" (")[0] for kind in config["mechanism_kinds"])
        + ".",
        "- **Dropped words**: the eval's dropped-word rate (a probe-positive word where the k = 1 main latent is",
        "  silent and no top-projecting latent aligned with the probe fires) against the true dropped share (a",
        "  word firing where the letter's matched latent is silent and no firing latent carries the letter",
        f"  direction at cosine >= {config['measure']['true_cos_threshold']}).",
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
        lines.append(
            f"  - {label}: Spearman {_fmt(value['rho'])} (n = {value['n']}, p = {_fmt(value['p_value'], 3)})"
        )
    tracking = [
        label
        for label, value in results["spearman_by_score"].items()
        if value["rho"] is not None and value["rho"] > 0 and value["p_value"] < 0.05
    ]
    lines.append(
        "  - Scores that rank-track the truth (Spearman > 0, p < 0.05): "
        + ("; ".join(tracking) if tracking else "none")
        + "."
    )
    lines.append(
        f"- Randomly initialised SAEs score {_fmt(random_score['mean'])} on average (max"
        f" {_fmt(random_score['max'])}, {random_score['n']} measured, {random_score['n_unmeasured']} without any"
        f" letter passing) against {_fmt(results['trained_sae_score']['mean'])} for the trained ones; the null"
        f" {'stays' if results['pass']['random_sae_scores_low'] else 'does not stay'} below"
        f" {results['low_random_score_threshold']}."
    )
    gate = results["gate"]
    lines.append(
        f"- Per-letter signal gate (`evals/absorption/gate.py`, d-scaled cosine gates) on the {gate['cells_gated']}"
        f" trained SAEs recorded with its inputs: {_fmt(gate['mean_letters_passing'], 1)} letters pass on average,"
        f" of {_fmt(gate['mean_letters_eligible'], 1)} eligible (probe F1 and probe-positive words enough; 26"
        f" letters in all), and {gate['cells_measurable']} SAEs reach the"
        f" {gate['min_passing_letters']} passing letters a headline needs (a minimum"
        " counted in passing letters, whatever the number eligible). Over those, each"
        " gated score's Spearman with the truth (n, p, 95 % bootstrap interval over the SAEs): "
        + "; ".join(
            f"{label} {_fmt(r['rho'])} (n {r['n']}, p {_fmt(r['p_value'], 3)}, [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}])"
            for label, r in gate["spearman_gated_vs_true"].items()
        )
        + ". The gate measures only the SAEs where it opens, so these are read with its selection in mind. True"
        f" absorption of passing letters averages {_fmt(gate['true_absorption_passing_letters'])}, of failing ones"
        f" {_fmt(gate['true_absorption_failing_letters'])}; failures by reason: {gate['letters_failing_by_reason']}."
    )
    everything = results["all_trained"]
    lines.append(
        f"- Over every trained SAE ({everything['cells']}: the grid and the mechanism test's modified SAEs, whose"
        " truth is as known), each score's Spearman with the truth: "
        + "; ".join(
            f"{label} {_fmt(r['rho'])} (n {r['n']}, p {_fmt(r['p_value'], 3)})"
            for label, r in everything["spearman_by_score"].items()
        )
        + f". Gated, over the {everything['cells_measurable']} the gate measures (n, p, 95 % bootstrap interval): "
        + "; ".join(
            f"{label} {_fmt(r['rho'])} (n {r['n']}, p {_fmt(r['p_value'], 3)}, [{_fmt(r['ci_low'])},"
            f" {_fmt(r['ci_high'])}])"
            for label, r in everything["spearman_gated_vs_true"].items()
        )
        + "."
    )
    for check in results.get("comparison_check", []):
        lines.append(comparison_line(check))
    for kind, curves in results["mechanism"].items():
        if all(point["p"] == 0 for points in curves.values() for point in points):
            lines.append(f"- {KIND_LABELS[kind].capitalize()}: no SAE trained with it in these cells yet.")
            continue
        parts = []
        for hierarchy, points in curves.items():
            first, last = points[0], points[-1]
            parts.append(
                f"{hierarchy} {_fmt(first['mean'])} at p = {first['p']:g} -> {_fmt(last['mean'])}"
                f" [{_fmt(last['low'])}, {_fmt(last['high'])}] at p = {last['p']:g}"
            )
        lines.append(f"- {KIND_LABELS[kind].capitalize()}: true absorption {'; '.join(parts)}.")
    lines += [mechanism_line(row) for row in results["mechanism_at_p"]]
    lines += [dropped_line(label, check) for label, check in results["dropped_validation"].items()]
    seeds = sorted({row["seed"] for row in results["grid"]})
    per_seed = {seed: sum(row["seed"] == seed for row in results["grid"]) for seed in seeds}
    lines += [
        "",
        "## Caveats",
        "",
        f"- Trained grid cells per seed: {per_seed} (the run is resumable; cells not listed were not run).",
        (
            "- Each letter has only a few words here, each a sizeable share of the letter's tokens, so SAEBench's"
            if not config["world"]["word_zipf_exponent"]
            else f"- Each letter has {config['world']['words_per_letter']} words here, the top ones a sizeable share"
            " of the letter's tokens, so SAEBench's"
        ),
        "  feature-split step (an F1 jump >= 0.03 adds a latent to the letter's main latents) can take an",
        "  absorbing word latent for a split letter latent; in an LLM a letter has thousands of words.",
        "- The letter probe also weighs the words' own directions (they predict the letter too), so SAEBench's",
        "  absorption fraction is partial even for a hand-built SAE without absorption (see the tests); the",
        "  full-absorption rate is zero there.",
    ]
    if gate["cells_gated"] < len(results["grid"]):
        lines += [
            "- The gate needs per-letter numbers (k = 1 latent precision, recall, F1, other-letter null) that",
            f"  {len(results['grid']) - gate['cells_gated']} cells computed before it was merged do not hold; it is",
            "  applied to the cells that do.",
        ]
    lines.append("")
    return "\n".join(lines)


def write_outputs(results: dict[str, Any], config: dict[str, Any], out_dir: Path) -> None:
    write_json_atomic(out_dir / "results.json", {"config": config, **results})
    plot_scatter(results, out_dir / "scatter_measured_vs_true.png")
    plot_mechanism(results, out_dir / "mechanism_true_absorption_vs_p.png")
    write_text_atomic(out_dir / "README.md", readme_text(results, config))
