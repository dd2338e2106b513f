"""Tokens/s of the embedded model's forward pass up to a hook layer vs the full depth, side by side.

Every SAE training and eval run here lives under this ceiling: the LLM forward dominates, and stopping at the
hook layer (`stop_at_layer`) is the main lever. Run: `python benchmarks/llm_throughput.py --layer 12`.
"""

from __future__ import annotations

import argparse
import time

import torch

from sae_mask_plugin import load_embedded_model
from sae_mask_plugin.embedded.corpus import load_embedded_corpus


def tokens_per_second(model, tokens: torch.Tensor, stop_at_layer: int | None, repeats: int) -> float:
    """Median tokens/s over `repeats` forward passes of `tokens` [batch, seq]."""
    rates = []
    with torch.no_grad():
        model(tokens[:1], stop_at_layer=stop_at_layer)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(tokens, stop_at_layer=stop_at_layer)
            rates.append(tokens.numel() / (time.perf_counter() - start))
    return sorted(rates)[len(rates) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--layer", type=int, default=12, help="hook layer: the forward stops after this block"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = load_embedded_model()
    text = " ".join(load_embedded_corpus(seed=0, show_progress=False)["text"][:2000])
    tokens = model.to_tokens(text)[0, : args.batch * args.context].reshape(args.batch, args.context)
    partial = tokens_per_second(model, tokens, args.layer + 1, args.repeats)
    full = tokens_per_second(model, tokens, None, args.repeats)
    print(f"threads={torch.get_num_threads()} batch={args.batch} context={args.context}")
    print(f"{'forward':<28}{'tokens/s':>10}")
    print(f"{f'to blocks.{args.layer} (stop_at_layer)':<28}{partial:>10.0f}")
    print(f"{f'full depth ({model.cfg.n_layers} layers)':<28}{full:>10.0f}")
    print(f"ratio partial/full: {partial / full:.2f}x")


if __name__ == "__main__":
    main()
