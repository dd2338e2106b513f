"""Wall time of each eval on the embedded default: a first SAE (cold caches) and a second SAE on the same model
and hook (warm caches), with the CPU presets. Prints a Markdown table for README's "what to expect".

    python benchmarks/eval_runtime.py                      # trains two small reference SAEs first
    python benchmarks/eval_runtime.py --sae A --sae B      # or times two saved SAEs
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from sae_mask_plugin.evals import OFFLINE_EVAL_NAMES, evaluate_saes
from sae_mask_plugin.evals.reference_saes import train_reference_sae


def _headline(out: Path, eval_name: str, sae_name: str) -> str:
    path = out / eval_name / f"{sae_name}_custom_sae_eval_results.json"
    if not path.is_file():
        return "failed"
    metrics = json.loads(path.read_text())["eval_result_metrics"]
    if eval_name == "absorption":
        found = metrics["first_letter_features"]
        score = metrics["mean"]["mean_absorption_fraction_score"]
        return (
            f"{found['num_letters_with_probe_feature']} letters with a probe, SAEBench mean absorption "
            f"{score if score is None else round(score, 3)}; gate: {metrics['gate']['status']}"
        )
    if eval_name == "sparse_probing":
        return f"dense {metrics['llm']['llm_test_accuracy']:.3f}, top-1 {metrics['sae']['sae_top_1_test_accuracy']:.3f}"
    if eval_name == "ood":
        sae, every = metrics["sae"], metrics["all_tasks"]
        if sae["sae_ood_accuracy"] is None:
            headline = "no task with OOD signal"
        else:
            headline = f"signal tasks: SAE k={sae['k']} ID/OOD {sae['sae_id_accuracy']:.3f}/{sae['sae_ood_accuracy']:.3f}"
        return (
            f"{headline}; all tasks: oracle ID/OOD {every['oracle_id_accuracy_all_tasks']:.3f}/"
            f"{every['oracle_ood_accuracy_all_tasks']:.3f}, SAE ID/OOD {every['sae_id_accuracy_all_tasks']:.3f}/"
            f"{every['sae_ood_accuracy_all_tasks']:.3f}"
        )
    return (
        f"L0 {metrics['sparsity']['l0']:.1f}, EV {metrics['reconstruction_quality']['explained_variance']:.3f}, "
        f"CE recovered {metrics['model_performance_preservation']['ce_loss_score']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sae", action="append", default=None, help="two SAE folders (default: train two)")
    parser.add_argument("--out", default=None, help="output folder (default: a fresh temporary folder)")
    parser.add_argument("--evals", default=",".join(OFFLINE_EVAL_NAMES))
    parser.add_argument("--train-tokens", type=int, default=60_000, help="tokens per reference SAE")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="eval-runtime-"))
    saes = args.sae
    if not saes:
        saes = [
            str(
                train_reference_sae(
                    out / "saes" / f"reference-{seed}",
                    d_sae=4096,
                    training_tokens=args.train_tokens,
                    seed=seed,
                )
            )
            for seed in (0, 1)
        ]
    if len(saes) != 2:
        parser.error("give two SAEs (--sae A --sae B) or none")
    rows = []
    for position, sae in zip(("first", "second"), saes, strict=True):
        started = time.perf_counter()
        summary = evaluate_saes([sae], args.evals, out / "results", preset="cpu")
        total = time.perf_counter() - started
        ((name, entry),) = summary.items()
        rows.append((position, name, entry["evals"], total))
    print(f"\nEval wall time on the embedded default, CPU preset, {torch.get_num_threads()} threads (s)\n")
    print("| eval | first SAE | second SAE | first SAE result |")
    print("|---|---|---|---|")
    for eval_name in rows[0][2]:
        first, second = rows[0][2][eval_name], rows[1][2][eval_name]
        print(
            f"| {eval_name} | {first.get('seconds', 0):.0f} | {second.get('seconds', 0):.0f} | "
            f"{_headline(out / 'results', eval_name, rows[0][1])} |"
        )
    print(f"| all (with model load) | {rows[0][3]:.0f} | {rows[1][3]:.0f} | |")
    print(f"\nresults: {out / 'results'}")


if __name__ == "__main__":
    main()
