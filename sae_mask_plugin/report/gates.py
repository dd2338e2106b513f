"""Gates a reader sees before any comparison: is the setting one where the metrics can be trusted?

- Training: a baseline with explained variance < 0.85 or an alive fraction (latents firing on at least one clean
  eval token) < 0.8 is undertrained; absorption and probing differences then say little about masking.
- Absorption: SAEBench's first-letter absorption is unreliable when fewer than 20 letters have a first-letter
  probe feature (and on small models and widths in general, as SAEBench's own README warns).
- Sparsity: SAEs whose thresholds were not calibrated on clean text compare at different L0 at the same k.
- Seeds: with one seed per condition there is no interval.
"""

from __future__ import annotations

from sae_mask_plugin.report.records import RunRecord

MIN_EXPLAINED_VARIANCE = 0.85
MIN_ALIVE_FRACTION = 0.8
MIN_ABSORPTION_LETTERS = 20


def _names(records: list[RunRecord]) -> str:
    shown = ", ".join(r.name for r in records[:4])
    return shown + (f" and {len(records) - 4} more" if len(records) > 4 else "")


def gate_warnings(records: list[RunRecord], n_seeds: int) -> list[str]:
    """Warnings (markdown, one line each) about what the comparisons rest on; empty when nothing is amiss."""
    warnings: list[str] = []
    baselines = [r for r in records if r.is_baseline]
    undertrained = [
        r
        for r in baselines
        if r.metrics.get("explained_variance", 1.0) < MIN_EXPLAINED_VARIANCE
        or r.metrics.get("frac_alive", 1.0) < MIN_ALIVE_FRACTION
    ]
    if undertrained:
        worst_ev = min(r.metrics.get("explained_variance", 1.0) for r in undertrained)
        worst_alive = min(r.metrics.get("frac_alive", 1.0) for r in undertrained)
        warnings.append(
            f"**Undertrained SAEs.** {len(undertrained)} of {len(baselines)} baselines have explained variance "
            f"< {MIN_EXPLAINED_VARIANCE} or alive fraction < {MIN_ALIVE_FRACTION} (lowest: EV {worst_ev:.3f}, "
            f"alive {worst_alive:.3f}; {_names(undertrained)}): differences in absorption and probing may reflect "
            "training length rather than masking. Train longer before reading them as effects."
        )
    few_letters = [
        r
        for r in records
        if r.metrics.get("num_letters_with_probe_feature", MIN_ABSORPTION_LETTERS) < MIN_ABSORPTION_LETTERS
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
