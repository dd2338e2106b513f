"""The absorption arm's training-gate plateau: the core eval's explained variance and alive fraction of the low-L0
search's SAEs.

The search (`research.absorption_validity`) reads explained variance on held-out cached activations of the training
corpus; the arm's training gate reads the core eval's (held-out sae-probes texts, the arm recipe's 104 x 8 windows,
the SAE's trained window positions only). The two differ by ~0.065 at these settings, so the arm's plateau per k
is this module's figure: the core eval of each search snapshot, mean over seeds at the final snapshot. Writes
`docs/absorption_validity/low_l0/core_ev.json` (with each snapshot's alive fraction on the same windows); resumes
from it, measuring again the snapshots recorded before the alive fraction was.

    python -m research.absorption_arm_plateau --search outputs/absorption_search \
        L6-w8192-k4:1048576 L6-w8192-k8:1048576 L6-w8192-k4-s1:1048576 ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sae_mask_plugin.files import write_json_atomic
from sae_mask_plugin.llm_dtype import cpu_model

OUT = Path("docs/absorption_validity/low_l0/core_ev.json")
ARM_RECIPE = "smollm2_absorption_arm"
SEQPOS_SLICE = (2, None)  # the search's training positions (its snapshots' metadata does not record them)
ROWS = Path("docs/absorption_validity/low_l0/rows.json")


def core_explained_variance(model, snapshot: Path) -> dict[str, float]:
    """The core eval's EV, alive fraction and L0 of a search snapshot (an inference SAE saved by SAELens), with the arm recipe's
    core eval settings."""
    from sae_bench.sae_bench_utils.general_utils import load_and_format_sae
    from sae_lens import SAE

    from sae_mask_plugin.evals.core.main import evaluate_sae
    from sae_mask_plugin.sweep import load_recipe

    sae = SAE.load_from_disk(str(snapshot))
    sae.cfg.metadata.seqpos_slice = SEQPOS_SLICE
    _, sae, _ = load_and_format_sae(snapshot.parent.name, sae, "cpu")
    config = load_recipe(ARM_RECIPE).eval_settings()["core"]
    with torch.no_grad():
        metrics = evaluate_sae(model, sae, snapshot.parent.name, config).eval_result_metrics
    return {
        "core_ev": metrics.reconstruction_quality.explained_variance,
        "frac_alive": metrics.misc_metrics.frac_alive,
        "l0": metrics.sparsity.l0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--search", type=Path, required=True, help="the search's output folder (saes/<name>/...)"
    )
    parser.add_argument("snapshots", nargs="+", help="NAME:TOKENS, e.g. L6-w8192-k4-s1:1048576")
    args = parser.parse_args()
    from sae_mask_plugin.embedded.model import load_embedded_model

    done = json.loads(OUT.read_text())["snapshots"] if OUT.is_file() else {}
    rows = json.loads(ROWS.read_text())
    model = load_embedded_model(dtype=torch.bfloat16)
    for spec in args.snapshots:
        if "frac_alive" in done.get(spec, {}):
            continue
        name, tokens = spec.split(":")
        measured = core_explained_variance(model, args.search / "saes" / name / f"tokens_{tokens}")
        held_out = rows.get(f"{name}-t{tokens}-words600", {}).get("explained_variance")
        done[spec] = {**measured, "held_out_ev": held_out, "cpu_model": cpu_model()}
        write_json_atomic(OUT, {"about": __doc__.splitlines()[0], "snapshots": done})
        print(spec, done[spec], flush=True)


if __name__ == "__main__":
    main()
