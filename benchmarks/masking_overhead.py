"""Throughput cost of masking: the same short run on the embedded default, unmasked (p = 0) and masked (p = 0.3),
in interleaved pairs in one process so that both runs of a pair see the same machine load (the order alternates
from pair to pair, so a drift in machine speed does not favour one side). Each pair gives a ratio masked /
unmasked; the script prints their mean and 95 % t-interval and reads it against the target masked / unmasked >=
0.98: held when the whole interval is at or above it, missed when it is below, else undecided with the pairs an
interval of +-1 % would take (from the measured spread).

    python benchmarks/masking_overhead.py [--training-tokens 40960] [--pairs 8] [--hook blocks.6.hook_resid_post]
        [--llm_dtype float32|bfloat16]   (default: the CPU's default LLM dtype, see `sae-mask info`)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sae_mask_plugin import (
    MaskedLanguageModelSAETrainingRunner,
    MaskingConfig,
    load_embedded_model,
    make_runner_config,
)
from sae_mask_plugin.embedded.corpus import load_embedded_corpus
from sae_mask_plugin.llm_dtype import LLM_DTYPES, llm_dtype_or_default
from sae_mask_plugin.report.stats import Summary, implied_sd, seeds_needed

TARGET = 0.98


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--training-tokens", type=int, default=40 * 1024)
    parser.add_argument(
        "--pairs", type=int, default=8, help="interleaved (unmasked, masked) pairs, at least 2"
    )
    parser.add_argument("--hook", default="blocks.6.hook_resid_post")
    parser.add_argument("--p", type=float, default=0.3)
    parser.add_argument("--llm_dtype", choices=LLM_DTYPES, default=None)
    args = parser.parse_args()
    if args.pairs < 2:
        parser.error("--pairs must be at least 2 (an interval needs two pairs)")
    llm_dtype = llm_dtype_or_default(args.llm_dtype)

    model, corpus = load_embedded_model(dtype=getattr(torch, llm_dtype)), load_embedded_corpus(seed=0)
    variants = {"unmasked": None, "masked": MaskingConfig(p=args.p, mask_token="<repo_name>")}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as out:
        for pair in range(args.pairs):
            order = list(variants) if pair % 2 == 0 else list(reversed(variants))
            for name in order:
                cfg = make_runner_config(
                    masking=variants[name],
                    llm_dtype=llm_dtype,
                    hook_name=args.hook,
                    training_tokens=args.training_tokens,
                    output_path=str(Path(out) / f"{name}-{pair}"),
                )
                runner = MaskedLanguageModelSAETrainingRunner(
                    cfg, override_model=model, override_dataset=corpus
                )
                start = time.perf_counter()
                runner.run()
                rates[name].append(args.training_tokens / (time.perf_counter() - start))

    ratios = [m / u for u, m in zip(rates["unmasked"], rates["masked"], strict=True)]
    summary = Summary.of(ratios)
    print(f"\nLLM in {llm_dtype}, {args.pairs} interleaved pairs of {args.training_tokens:,} tokens")
    print(f"{'run':<10} {'tokens/s (median)':>18}")
    for name, values in rates.items():
        print(f"{name:<10} {statistics.median(values):>18.0f}")
    print(f"masked / unmasked per pair: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"mean {summary.format(3)} (95 % t-interval): {verdict(summary, TARGET)}")


def verdict(summary: Summary, target: float) -> str:
    """The interval read against `target`: held, missed, or undecided with the pairs a +-1 % interval takes."""
    assert summary.low is not None and summary.high is not None
    if summary.low >= target:
        return f"target >= {target} held"
    if summary.high < target:
        return f"target >= {target} missed"
    return f"undecided against >= {target}: ~{seeds_needed(implied_sd(summary), 0.01)} pairs would give +-1 %"


if __name__ == "__main__":
    main()
