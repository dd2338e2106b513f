"""Which paired comparisons of a report are decided, and how many paired seeds the others would take.

    python -m research.seeds_needed REPORT_DIR/results.json

For each matched-L0 comparison: the paired 95 % t-interval's half-width against the decision threshold (0.05
for absorption scores, 0.02 for accuracies and explained variance); where it is wider, the number of seeds n at
which t(0.975, n - 1) · sd / √n falls to the threshold, sd being the paired differences' SD implied by the
interval. An estimate: the SD of a few seeds is itself uncertain.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from research.study_pages import DECISION_HALF_WIDTHS
from sae_mask_plugin.report.stats import Summary, half_width, implied_sd, seeds_needed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    results = json.loads(parser.parse_args().results.read_text())
    for cell, rows in results["matched_l0_comparisons"].items():
        for row in rows:
            threshold = DECISION_HALF_WIDTHS.get(row["metric"])
            difference = Summary(**row["difference"])
            if threshold is None or difference.n < 2:
                continue
            half = half_width(difference)
            status = (
                "decided"
                if half <= threshold
                else f"~{seeds_needed(implied_sd(difference), threshold)} seeds"
            )
            print(
                f"{cell:<48} {row['metric']:<32} {difference.mean:+.4f} "
                f"[{difference.low:+.4f}, {difference.high:+.4f}]  half-width {half:.4f}: {status}"
            )


if __name__ == "__main__":
    main()
