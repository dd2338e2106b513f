"""Why the absorption arm's first run fell short of its plateau: its seed-0 baselines trained again with a larger
mixing buffer. The first run (`recipes/smollm2_absorption_arm.yaml`) drew each batch of 2,048 from SAELens's buffer of
`n_batches_in_buffer` 32 x 126 positions = 4,032 activations; the check trains the same pair (p 0, seed 0, k 4 and 8)
with 512 (64,512 activations), everything else the recipe's, and reads the recipe's core eval. Writes
`docs/smollm2_study/absorption_arm_v2/buffer_check.json` and the `buffer-check` block of both arm pages.

    # a copy of the first run's recipe with n_batches_in_buffer 512, its grid cut to p 0 / seed 0, evals [core]:
    sae-mask sweep CHECK_RECIPE --out sweeps/arm_buffer_check
    python -m research.absorption_arm_buffer_check --evals sweeps/arm_buffer_check/evals/p0-s0/core
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from research.study_pages import update_block
from sae_mask_plugin.files import write_json_atomic
from sae_mask_plugin.report.collect import flatten_metrics

OUT = Path("docs/smollm2_study/absorption_arm_v2/buffer_check.json")
PAGES = (
    Path("docs/smollm2_study/absorption_arm/README.md"),
    Path("docs/smollm2_study/absorption_arm_v2/README.md"),
)
FIRST_RUN = Path("docs/smollm2_study/absorption_arm/results.json")
PLATEAU = Path("docs/absorption_validity/low_l0/core_ev.json")
METRICS = ("explained_variance", "frac_alive", "ce_loss_score", "l0")
KS = (4, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=Path, required=True, help="the check's core-eval folder")
    args = parser.parse_args()
    first_run = {run["name"]: run["metrics"] for run in json.loads(FIRST_RUN.read_text())["runs"]}
    snapshots = json.loads(PLATEAU.read_text())["snapshots"]
    runs = {}
    for k in KS:
        name = f"topk-k{k}-w8192-p0-s0"
        check = flatten_metrics(json.loads((args.evals / f"{name}_custom_sae_eval_results.json").read_text()))
        search = [row for spec, row in snapshots.items() if spec.split(":")[0].split("-")[2] == f"k{k}"]
        runs[name] = {
            "buffer_512": {key: check[key] for key in METRICS},
            "buffer_32_first_run": {key: first_run[name][key] for key in METRICS},
            "plateau": {
                "explained_variance": statistics.mean(row["core_ev"] for row in search),
                "frac_alive": statistics.mean(row["frac_alive"] for row in search),
            },
        }
    data = {"about": __doc__.splitlines()[0], "runs": runs}
    write_json_atomic(OUT, data)
    for page in PAGES:
        update_block(page, "buffer-check", buffer_check_sentence(data))
    print(buffer_check_sentence(data))


def buffer_check_sentence(data: dict) -> str:
    """The check in one sentence: per k, the seed-0 baseline's core EV and alive fraction with the first run's buffer
    and the larger one, beside the search's plateau."""
    per_k = "; ".join(
        f"k {k}: EV {run['buffer_32_first_run']['explained_variance']:.3f} → {run['buffer_512']['explained_variance']:.3f} "
        f"(plateau {run['plateau']['explained_variance']:.3f}), alive {run['buffer_32_first_run']['frac_alive']:.3f} → "
        f"{run['buffer_512']['frac_alive']:.3f} (plateau {run['plateau']['frac_alive']:.3f})"
        for k, run in zip(KS, (data["runs"][f"topk-k{k}-w8192-p0-s0"] for k in KS), strict=True)
    )
    return (
        "The first run's seed-0 baselines trained again with a mixing buffer of 64,512 activations instead of 4,032 "
        f"(core eval, {OUT.name}): {per_k}."
    )


if __name__ == "__main__":
    main()
