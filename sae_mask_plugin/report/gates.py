"""Gates a reader sees before any comparison: is the setting one where the metrics can be trusted?

- Training: a baseline with an alive fraction (latents firing on at least one clean eval token) < 0.8, or an
  explained variance below the gate's, is undertrained; absorption and probing differences then say little about
  masking. The EV gate is convergence where the recipe gives its learning curve's plateau for the baseline's
  shape (EV within a stated tolerance of it: an absolute figure is a coin toss at low k and out of reach at
  some), else the absolute 0.85 (`TrainingGate`).
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

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sae_mask_plugin.evals.absorption.gate import MIN_PASSING_LETTERS as MIN_ABSORPTION_LETTERS
from sae_mask_plugin.evals.absorption.gate import NOT_MEASURABLE
from sae_mask_plugin.report.records import RunRecord

MIN_EXPLAINED_VARIANCE = 0.85
MIN_ALIVE_FRACTION = 0.8
NOT_COMPUTED = "not computed"
EV_GATE_MARGIN = "explained_variance_gate_margin"
"""A baseline's explained variance minus its gate's EV threshold (negative: below the gate); interpolated in log L0
like the metrics at matched L0, so an interpolated baseline is judged against the interpolated threshold."""
ALIVE_GATE_MARGIN = "alive_fraction_gate_margin"
"""A baseline's alive fraction minus its gate's alive threshold (negative: below the gate); only for the shapes with
a plateau alive fraction, interpolated like `EV_GATE_MARGIN`."""


class TrainingGateError(ValueError):
    """A training gate with an impossible setting."""


@dataclass(frozen=True)
class TrainingGate:
    """When a baseline counts as trained, fixed before the runs start (a recipe's `training_gate`).

    Args:
        min_alive_fraction: Latents firing on at least one clean eval token, as a share of the width.
        plateau_explained_variance: The learning curve's plateau EV by SAE shape (`RunRecord.shape`, e.g.
            `topk w8192 k8`): a baseline of that shape passes with EV >= plateau - `ev_tolerance`.
        ev_tolerance: How far below its plateau a converged baseline's EV may lie.
        plateau_alive_fraction: The alive fraction, on the same eval, of the SAEs that gave a shape's plateau EV:
            a baseline of that shape passes with alive >= plateau - `alive_tolerance` (other shapes need
            `min_alive_fraction`; at low k many latents fire too rarely to show on the eval's ~100k tokens).
        alive_tolerance: How far below its plateau's alive fraction a converged baseline's may lie.
        min_explained_variance: The absolute EV a baseline of a shape without a plateau needs; with plateaus it is
            also printed as a note beside the gate.
    """

    min_alive_fraction: float = MIN_ALIVE_FRACTION
    plateau_explained_variance: dict[str, float] = field(default_factory=dict)
    ev_tolerance: float = 0.01
    plateau_alive_fraction: dict[str, float] = field(default_factory=dict)
    alive_tolerance: float = 0.05
    min_explained_variance: float = MIN_EXPLAINED_VARIANCE

    def __post_init__(self) -> None:
        for name in ("min_alive_fraction", "min_explained_variance"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
                raise TrainingGateError(f"{name} must be in [0, 1], got {value!r}")
        for name in ("ev_tolerance", "alive_tolerance"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
                raise TrainingGateError(f"{name} must be in [0, 1), got {value!r}")
        for name in ("plateau_explained_variance", "plateau_alive_fraction"):
            plateaus = getattr(self, name)
            if not isinstance(plateaus, Mapping):
                raise TrainingGateError(
                    f"{name} must map SAE shapes to values in (0, 1], e.g. {{topk w8192 k8: 0.85}}"
                )
            for shape, value in plateaus.items():
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
                    raise TrainingGateError(f"{name}[{shape!r}] must be in (0, 1], got {value!r}")

    @property
    def converges(self) -> bool:
        """Whether the EV gate is convergence to a plateau (for the shapes given) rather than absolute."""
        return bool(self.plateau_explained_variance)

    def ev_threshold(self, shape: str) -> float:
        """The EV a baseline of `shape` needs."""
        plateau = self.plateau_explained_variance.get(shape)
        return self.min_explained_variance if plateau is None else plateau - self.ev_tolerance

    def alive_threshold(self, shape: str) -> float:
        """The alive fraction a baseline of `shape` needs."""
        plateau = self.plateau_alive_fraction.get(shape)
        return self.min_alive_fraction if plateau is None else plateau - self.alive_tolerance

    def _alive_words(self) -> str:
        if not self.plateau_alive_fraction:
            return f"alive fraction ≥ {self.min_alive_fraction}"
        plateaus = ", ".join(f"{shape} {value:.3f}" for shape, value in self.plateau_alive_fraction.items())
        return (
            f"alive fraction within {self.alive_tolerance} of its plateau's ({plateaus}; other shapes "
            f"≥ {self.min_alive_fraction})"
        )

    def describe(self) -> str:
        """The gate in words, e.g. for the report's sentences."""
        if not self.converges:
            return f"explained variance ≥ {self.min_explained_variance}, {self._alive_words()}"
        plateaus = ", ".join(
            f"{shape} {value:.3f}" for shape, value in self.plateau_explained_variance.items()
        )
        return (
            f"explained variance within {self.ev_tolerance} of its learning curve's plateau ({plateaus}; other "
            f"shapes ≥ {self.min_explained_variance}), {self._alive_words()}"
        )


DEFAULT_TRAINING_GATE = TrainingGate()


def _gate_margins(record: RunRecord, gate: TrainingGate) -> dict[str, float]:
    """A baseline's `EV_GATE_MARGIN` (where it has an explained variance) and `ALIVE_GATE_MARGIN` (where its shape
    has a plateau alive fraction and it has an alive fraction)."""
    margins = {}
    if "explained_variance" in record.metrics:
        margins[EV_GATE_MARGIN] = record.metrics["explained_variance"] - gate.ev_threshold(record.shape)
    if "frac_alive" in record.metrics and record.shape in gate.plateau_alive_fraction:
        margins[ALIVE_GATE_MARGIN] = record.metrics["frac_alive"] - gate.alive_threshold(record.shape)
    return margins


def with_gate_margins(records: list[RunRecord], gate: TrainingGate) -> list[RunRecord]:
    """`records` with the training gate's margins in each baseline's metrics (`_gate_margins`)."""
    return [
        replace(r, metrics={**r.metrics, **_gate_margins(r, gate)}) if r.is_baseline else r for r in records
    ]


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


def _below_margin(metrics: Mapping[str, float], margin: str) -> bool:
    return metrics[margin] < 0 and not math.isclose(metrics[margin], 0, abs_tol=1e-12)


def below_training_gate(metrics: Mapping[str, float], gate: TrainingGate = DEFAULT_TRAINING_GATE) -> bool:
    """Whether a baseline's metrics (its own, or interpolated at matched L0) are below the training gate: the EV
    and alive margins `with_gate_margins` added (else the absolute EV and alive fraction; unmeasured: not below)."""
    if EV_GATE_MARGIN in metrics:
        ev_below = _below_margin(metrics, EV_GATE_MARGIN)
    else:
        ev_below = metrics.get("explained_variance", 1.0) < gate.min_explained_variance
    if ALIVE_GATE_MARGIN in metrics:
        alive_below = _below_margin(metrics, ALIVE_GATE_MARGIN)
    else:
        alive_below = metrics.get("frac_alive", 1.0) < gate.min_alive_fraction
    return ev_below or alive_below


def training_gate_note(records: list[RunRecord], gate: TrainingGate) -> str:
    """The training gate in words; under a convergence gate, how many baselines the absolute EV would fail."""
    if not gate.converges:
        return gate.describe()
    baselines = [r for r in records if r.is_baseline and "explained_variance" in r.metrics]
    below = sum(r.metrics["explained_variance"] < gate.min_explained_variance for r in baselines)
    return (
        f"{gate.describe()}; for reference, {below} of {len(baselines)} baselines are below the absolute "
        f"explained variance {gate.min_explained_variance}"
    )


def gate_warnings(
    records: list[RunRecord], n_seeds: int, gate: TrainingGate = DEFAULT_TRAINING_GATE
) -> list[str]:
    """Warnings (markdown, one line each) about what the comparisons rest on; empty when nothing is amiss."""
    warnings: list[str] = []
    baselines = [r for r in records if r.is_baseline]
    undertrained = [r for r in baselines if below_training_gate(r.metrics, gate)]
    if undertrained:
        worst_ev = min(r.metrics.get("explained_variance", 1.0) for r in undertrained)
        worst_alive = min(r.metrics.get("frac_alive", 1.0) for r in undertrained)
        warnings.append(
            f"**Undertrained SAEs.** {len(undertrained)} of {len(baselines)} baselines are below the training gate "
            f"({gate.describe()}; lowest: EV {worst_ev:.3f}, alive {worst_alive:.3f}; {_names(undertrained)}): "
            "differences in absorption and probing may reflect training length rather than masking, so a cell "
            "whose baseline is below the gate as compared leaves the headline (named under it; its verdicts in the "
            "appendix are marked). Train longer before reading those as effects."
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
    dtypes = sorted({r.llm_dtype for r in records if r.llm_dtype is not None})
    if len(dtypes) > 1:
        counts = ", ".join(f"{sum(r.llm_dtype == dtype for r in records)} in {dtype}" for dtype in dtypes)
        warnings.append(
            f"**Mixed LLM dtypes** ({counts}): SAEs trained on activations of different dtypes are compared; an "
            "arm should run in one dtype."
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
                "absorption_letters_eligible": _optional_int(r.metrics.get("absorption_letters_eligible")),
                **{metric: r.metrics.get(metric) for metric in _GATE_ROW_METRICS},
                "headline": headline_text,
            }
        )
    return rows


def _optional_int(value: float | None) -> int | None:
    return None if value is None else int(value)


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
        "scores of an SAE below the gate stay in the run table but are not compared (no signal to test). Columns: "
        "letters passing the gate / needed (of those eligible: a usable probe and enough probe-positive words, "
        "which the SAE cannot change); the k = 1 full-absorption rate over them (gated) and a random SAE's; "
        "SAEBench's absorption fraction over them (not validated on ground truth) and a random SAE's; the main "
        "latents' mean precision and recall.",
        "",
        "| run | letters | k = 1 rate | random | SAEBench fraction | random | precision | recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        fraction = row["gated_absorption_fraction_score"]
        lines.append(
            f"| {row['run']} | {row['absorption_letters_passing']} / {row['absorption_letters_needed']}"
            + (
                f" (of {row['absorption_letters_eligible']})"
                if row["absorption_letters_eligible"] is not None
                else ""
            )
            + " | "
            f"{row['headline']} | {number(row['random_sae_k1_full_absorption_score'])} | "
            f"{NOT_MEASURABLE if fraction is None else number(fraction)} | "
            f"{number(row['random_sae_absorption_fraction_score'])} | "
            f"{number(row['mean_main_latent_precision'])} | {number(row['mean_main_latent_recall'])} |"
        )
    return [*lines, ""]
