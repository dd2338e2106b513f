"""The absorption arm's SAEs and the low-L0 search's on one yardstick: explained variance on the search's held-out
cached activations (`research.absorption_validity.held_out_quality`), so that a shortfall against the search's
plateau can be told apart from a difference between eval texts. Writes
`docs/smollm2_study/absorption_arm/held_out_ev.json` and the arm page's `held-out-check` block.

    python -m research.absorption_arm_held_out --search outputs/absorption_search --arm sweeps/smollm2_absorption_arm
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from research.absorption_validity import held_out_quality
from research.study_pages import update_block
from sae_mask_plugin.files import write_json_atomic

OUT = Path("docs/smollm2_study/absorption_arm/held_out_ev.json")
PAGE = Path("docs/smollm2_study/absorption_arm/README.md")
LAYER = 6
HELD_OUT_ROWS = 8_192  # the search's `--held-out` default: the rows its published EV was read on
SEARCH_FINALS = {
    4: ("L6-w8192-k4", "L6-w8192-k4-s1", "L6-w8192-k4-s2"),
    8: ("L6-w8192-k8", "L6-w8192-k8-s1", "L6-w8192-k8-s2"),
}
FINAL_TOKENS = 1_048_576


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", type=Path, required=True, help="the search's output folder")
    parser.add_argument("--arm", type=Path, required=True, help="the arm's sweep folder (saes/<run name>/)")
    args = parser.parse_args()
    rows: dict[str, dict[str, float | str | int]] = {}
    for k, names in SEARCH_FINALS.items():
        for name in names:
            path = args.search / "saes" / name / f"tokens_{FINAL_TOKENS}"
            rows[name] = {
                "source": "search",
                "k": k,
                **held_out_quality(args.search, path, LAYER, HELD_OUT_ROWS),
            }
    for path in sorted((args.arm / "saes").iterdir()):
        k = int(path.name.split("-")[1].removeprefix("k"))
        arm = "baseline" if "-p0-" in path.name else "masked"
        rows[path.name] = {
            "source": f"arm {arm}",
            "k": k,
            **held_out_quality(args.search, path, LAYER, HELD_OUT_ROWS),
        }
    means = {
        f"{source} k{k}": statistics.mean(
            float(row["explained_variance"])
            for row in rows.values()
            if row["source"] == source and row["k"] == k
        )
        for source in ("search", "arm baseline", "arm masked")
        for k in SEARCH_FINALS
    }
    write_json_atomic(
        OUT,
        {
            "about": __doc__.splitlines()[0],
            "held_out_rows": HELD_OUT_ROWS,
            "mean_explained_variance": means,
            "saes": rows,
        },
    )
    update_block(PAGE, "held-out-check", held_out_sentence(means))
    print(held_out_sentence(means))


def held_out_sentence(means: dict[str, float]) -> str:
    """The check in one sentence: per k, the search's, the arm baselines' and the masked SAEs' mean EV."""
    per_k = "; ".join(
        f"k {k}: search {means[f'search k{k}']:.3f}, arm baselines {means[f'arm baseline k{k}']:.3f}, "
        f"masked {means[f'arm masked k{k}']:.3f}"
        for k in SEARCH_FINALS
    )
    return (
        f"On the search's own held-out activations ({HELD_OUT_ROWS:,} rows of its cache), mean explained variance "
        f"({OUT.name}): {per_k}."
    )


if __name__ == "__main__":
    main()
