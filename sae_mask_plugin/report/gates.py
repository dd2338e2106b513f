"""Gates a reader sees before any comparison: is the setting one where the metrics can be trusted?

- Training: a baseline with explained variance < 0.85 or an alive fraction (latents firing on at least one clean
  eval token) < 0.8 is undertrained; absorption and probing differences then say little about masking.
- Absorption: the eval's per-letter signal gate (`evals/absorption/gate.py`) keeps a letter only where the
  probe, the word count, the SAE's main latent and two nulls say the score carries signal; an SAE with fewer
  than 20 passing letters has no absorption headline ("absorption not measurable here"). The headline is the
  gated k = 1 full-absorption rate (the score the synthetic control in `docs/absorption_control/` found to
  rank-track true absorption); SAEBench's gated absorption fraction follows it, not validated on ground truth.
  SAEBench's ungated scores of an SAE that fails the gate are shown but not tested (`comparable_metrics`).
  Results written before the gate existed fall back to SAEBench's count of letters with a first-letter probe
  feature; results written before the k = 1 score existed read "not computed" there.
- Sparsity: SAEs whose thresholds were not calibrated on clean text compare at different L0 at the same k.
- Seeds: with one seed per condition there is no interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sae_mask_plugin.evals.absorption.gate import NOT_MEASURABLE
from sae_mask_plugin.report.records import RunRecord

MIN_EXPLAINED_VARIANCE = 0.85
MIN_ALIVE_FRACTION = 0.8
MIN_ABSORPTION_LETTERS = 20
NOT_COMPUTED = "not computed"


def absorption_measurable(record: RunRecord) -> bool:
    """Whether an SAE evaluated with the absorption gate has enough passing letters for a headline."""
    return record.metrics["absorption_letters_passing"] >= record.metrics["absorption_letters_needed"]


UNGATED_ABSORPTION_METRICS = frozenset({"mean_absorption_fraction_score", "mean_full_absorption_score"})
"""SAEBench's absorption scores averaged over every letter, which the signal gate does not filter."""


def comparable_metrics(record: RunRecord) -> dict[str, float]:
    """The metrics of a run that a paired comparison may test: all of them, except SAEBench's ungated absorption
    scores of an SAE whose absorption the gate finds not measurable (no signal there: they stay in the run tables,
    untested). Results written before the gate existed keep them."""
    if "absorption_letters_passing" not in record.metrics or absorption_measurable(record):
        return record.metrics
    return {key: value for key, value in record.metrics.items() if key not in UNGATED_ABSORPTION_METRICS}


def _names(records: list[RunRecord]) -> str:
    shown = ", ".join(r.name for r in records[:4])
    return shown + (f" and {len(records) - 4} more" if len(records) > 4 else "")


def below_training_gate(metrics: Mapping[str, float]) -> bool:
    """Whether an SAE's explained variance or alive fraction is below the training gate (unmeasured: not below)."""
    return (
        metrics.get("explained_variance", 1.0) < MIN_EXPLAINED_VARIANCE
        or metrics.get("frac_alive", 1.0) < MIN_ALIVE_FRACTION
    )


def gate_warnings(records: list[RunRecord], n_seeds: int) -> list[str]:
    """Warnings (markdown, one line each) about what the comparisons rest on; empty when nothing is amiss."""
    warnings: list[str] = []
    baselines = [r for r in records if r.is_baseline]
    undertrained = [r for r in baselines if below_training_gate(r.metrics)]
    if undertrained:
        worst_ev = min(r.metrics.get("explained_variance", 1.0) for r in undertrained)
        worst_alive = min(r.metrics.get("frac_alive", 1.0) for r in undertrained)
        warnings.append(
            f"**Undertrained SAEs.** {len(undertrained)} of {len(baselines)} baselines have explained variance "
            f"< {MIN_EXPLAINED_VARIANCE} or alive fraction < {MIN_ALIVE_FRACTION} (lowest: EV {worst_ev:.3f}, "
            f"alive {worst_alive:.3f}; {_names(undertrained)}): differences in absorption and probing may reflect "
            "training length rather than masking, so a cell whose baseline is below the gate as compared leaves "
            "the headline (named under it; its verdicts in the appendix are marked). Train longer before reading "
            "those as effects."
        )
    gated = [r for r in records if "absorption_letters_passing" in r.metrics]
    not_measurable = [r for r in gated if not absorption_measurable(r)]
    if not_measurable:
        most = max(int(r.metrics["absorption_letters_passing"]) for r in not_measurable)
        warnings.append(
            f"**Absorption not measurable here** for {len(not_measurable)} of {len(records)} SAEs (at most {most} "
            f"letters pass the signal gate, {int(not_measurable[0].metrics['absorption_letters_needed'])} needed; "
            f'{_names(not_measurable)}): see "Absorption gate".'
        )
    few_letters = [
        r
        for r in records
        if r not in gated
        and r.metrics.get("num_letters_with_probe_feature", MIN_ABSORPTION_LETTERS) < MIN_ABSORPTION_LETTERS
    ]
    if few_letters:
        fewest = min(int(r.metrics["num_letters_with_probe_feature"]) for r in few_letters)
        warnings.append(
            f"**Absorption on few letters.** {len(few_letters)} runs found a first-letter probe feature for fewer "
            f"than {MIN_ABSORPTION_LETTERS} letters (fewest: {fewest}; {_names(few_letters)}): SAEBench calls "
            "absorption unreliable there."
        )
    uncalibrated = [r for r in records if not r.is_calibrated]
    if uncalibrated:
        warnings.append(
            f"**Thresholds not calibrated on clean text** for {len(uncalibrated)} of {len(records)} SAEs "
            f"({_names(uncalibrated)}): at the same k such SAEs can fire at different L0, so same-k rows mix "
            "sparsity with masking; read the matched-L0 rows (`sae-mask calibrate` fixes BatchTopK-family SAEs)."
        )
    if n_seeds < 2:
        warnings.append(
            "**One seed per condition**: no interval is available, so no difference below can be called an effect."
        )
    return warnings


_GATE_ROW_METRICS = (
    "gated_k1_full_absorption_score",
    "random_sae_k1_full_absorption_score",
    "gated_absorption_fraction_score",
    "random_sae_absorption_fraction_score",
    "gated_full_absorption_score",
    "mean_main_latent_precision",
    "mean_main_latent_recall",
)


def absorption_gate_rows(records: list[RunRecord]) -> list[dict[str, Any]]:
    """Per SAE evaluated with the gate: letters passing and needed, the gated scores (the k = 1 full-absorption
    rate, SAEBench's absorption fraction and full-absorption rate; None: not measurable or not computed), the
    random SAE's, and the headline as the report prints it (the gated k = 1 full-absorption rate)."""
    rows = []
    for r in sorted(records, key=lambda r: r.name):
        if "absorption_letters_passing" not in r.metrics:
            continue
        headline = r.metrics.get("gated_k1_full_absorption_score")
        if not absorption_measurable(r):
            headline_text = NOT_MEASURABLE
        else:
            headline_text = NOT_COMPUTED if headline is None else f"{headline:.4f}"
        rows.append(
            {
                "run": r.name,
                "absorption_letters_passing": int(r.metrics["absorption_letters_passing"]),
                "absorption_letters_needed": int(r.metrics["absorption_letters_needed"]),
                **{metric: r.metrics.get(metric) for metric in _GATE_ROW_METRICS},
                "headline": headline_text,
            }
        )
    return rows


def absorption_gate_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The report's "Absorption gate" section (empty when no SAE was evaluated with the gate)."""
    if not rows:
        return []

    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:.4f}"

    lines = [
        "## Absorption gate",
        "",
        "A letter counts only where its LLM probe is good, enough probe-positive test words are scored, the SAE "
        "has a precise main latent aligned with the probe (cosine threshold scaled with d_model), the latent "
        "beats a random SAE's, and the score is below the score with another letter's latent. The absorption "
        "headline averages passing letters; with too few it is not a number. The headline is the k = 1 "
        "full-absorption rate (each letter's words scored with its k = 1 main latent alone, without SAEBench's "
        "feature-split latents): the score the synthetic control (`docs/absorption_control/`) found to rank-track "
        "true absorption, which SAEBench's absorption fraction, shown beside it, did not. SAEBench's ungated "
        "scores of an SAE below the gate stay in the run table but are not compared (no signal to test).",
        "",
        "| run | letters passing / needed | k = 1 full-absorption rate (gated) | random SAE | "
        "absorption fraction (SAEBench, gated; not validated on ground truth) | random SAE | "
        "main-latent precision | main-latent recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        fraction = row["gated_absorption_fraction_score"]
        lines.append(
            f"| {row['run']} | {row['absorption_letters_passing']} / {row['absorption_letters_needed']} | "
            f"{row['headline']} | {number(row['random_sae_k1_full_absorption_score'])} | "
            f"{NOT_MEASURABLE if fraction is None else number(fraction)} | "
            f"{number(row['random_sae_absorption_fraction_score'])} | "
            f"{number(row['mean_main_latent_precision'])} | {number(row['mean_main_latent_recall'])} |"
        )
    return [*lines, ""]
