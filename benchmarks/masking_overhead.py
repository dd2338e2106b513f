"""Throughput cost of masking: the same short run on the embedded default, unmasked (p = 0) and masked (p = 0.3),
interleaved in one process so that both see the same machine load. Target: masked/unmasked >= 0.98.

    python benchmarks/masking_overhead.py [--training-tokens 40960] [--repeats 2] [--hook blocks.6.hook_resid_post]
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--training-tokens", type=int, default=40 * 1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hook", default="blocks.6.hook_resid_post")
    parser.add_argument("--p", type=float, default=0.3)
    parser.add_argument("--llm_dtype", choices=LLM_DTYPES, default=None)
    args = parser.parse_args()
    llm_dtype = llm_dtype_or_default(args.llm_dtype)

    model, corpus = load_embedded_model(dtype=getattr(torch, llm_dtype)), load_embedded_corpus(seed=0)
    variants = {"unmasked": None, "masked": MaskingConfig(p=args.p, mask_token="<repo_name>")}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as out:
        for repeat in range(args.repeats):
            for name, masking in variants.items():
                cfg = make_runner_config(
                    masking=masking,
                    llm_dtype=llm_dtype,
                    hook_name=args.hook,
                    training_tokens=args.training_tokens,
                    output_path=str(Path(out) / f"{name}-{repeat}"),
                )
                runner = MaskedLanguageModelSAETrainingRunner(
                    cfg, override_model=model, override_dataset=corpus
                )
                start = time.perf_counter()
                runner.run()
                rates[name].append(args.training_tokens / (time.perf_counter() - start))

    unmasked, masked = statistics.median(rates["unmasked"]), statistics.median(rates["masked"])
    print(f"\nLLM in {llm_dtype}")
    print(f"{'run':<10} {'tokens/s (median of ' + str(args.repeats) + ')':>26}")
    print(f"{'unmasked':<10} {unmasked:>26.0f}")
    print(f"{'masked':<10} {masked:>26.0f}")
    print(f"masked / unmasked = {masked / unmasked:.3f} (target >= 0.98)")


if __name__ == "__main__":
    main()
