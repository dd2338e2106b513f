"""Tokens/s of the embedded model's forward pass up to a hook, float32 vs bfloat16, side by side, at 1 and 2 threads.

Every SAE training and eval run here lives under this ceiling: the LLM forward to the hook dominates. For each
thread count and dtype it prints the forward's tokens/s, its matmul FLOPs per token to the hook, the GFLOP/s that
makes, and the fraction of the CPU's measured matmul peak in that dtype (one 2048x576 . 576x1536 product, the
size of the MLP's first product on a 2,048-token batch). Also printed: the full-depth forward (float32) and the
CPU's bf16 features (`sae-mask info`). Run: `python benchmarks/llm_throughput.py [--layer 12] [--threads 1,2]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sae_mask_plugin import load_embedded_model
from sae_mask_plugin.embedded.corpus import load_embedded_corpus
from sae_mask_plugin.llm_dtype import LLM_DTYPES, default_llm_dtype

MATMUL_SHAPE = (2048, 576, 1536)


def tokens_per_second(model, tokens: torch.Tensor, stop_at_layer: int | None, repeats: int) -> float:
    """Median tokens/s over `repeats` forward passes of `tokens` [batch, seq]."""
    rates = []
    with torch.no_grad():
        model(tokens[:1], stop_at_layer=stop_at_layer)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(tokens, stop_at_layer=stop_at_layer)
            rates.append(tokens.numel() / (time.perf_counter() - start))
    return statistics.median(rates)


def matmul_gflops(dtype: torch.dtype, repeats: int = 5) -> float:
    """Median GFLOP/s of one `MATMUL_SHAPE` product (`torch.nn.functional.linear`) in `dtype`."""
    rows, inner, cols = MATMUL_SHAPE
    inputs, weight = torch.randn(rows, inner, dtype=dtype), torch.randn(cols, inner, dtype=dtype)
    torch.nn.functional.linear(inputs, weight)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.linear(inputs, weight)
        times.append(time.perf_counter() - start)
    return 2 * rows * inner * cols / statistics.median(times) / 1e9


def flops_per_token(model, layer: int, context: int) -> float:
    """Matmul FLOPs per token of the forward through blocks 0..`layer`: 2 per weight of every block matrix, plus
    attention scores and mixing (2 x 2 x heads x d_head x mean causal span)."""
    weights = sum(
        parameter.numel()
        for block in model.blocks[: layer + 1]
        for parameter in block.parameters()
        if parameter.ndim >= 2
    )
    attention = 4 * model.cfg.n_heads * model.cfg.d_head * (context + 1) / 2
    return 2 * weights + (layer + 1) * attention


TARGET_SHARE_OF_MATMUL_RATIO = 0.8
"""The LLM pass's bfloat16 / float32 speed-up should reach this share of the CPU's own matmul ratio (the pass is
mostly matmuls; the rest, attention's softmax and the norms, gains less): a target every CPU can be held to, where a
fixed ratio is out of reach without AMX."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--layer", type=int, default=12, help="hook layer: the forward stops after this block"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    args = parser.parse_args()

    models = {dtype: load_embedded_model(dtype=getattr(torch, dtype)) for dtype in LLM_DTYPES}
    text = " ".join(load_embedded_corpus(seed=0, show_progress=False)["text"][:2000])
    tokens = (
        models["float32"].to_tokens(text)[0, : args.batch * args.context].reshape(args.batch, args.context)
    )
    flops = flops_per_token(models["float32"], args.layer, args.context)
    print(f"CPU: default LLM dtype {default_llm_dtype().describe()}")
    print(
        f"forward to blocks.{args.layer} (stop_at_layer), batch {args.batch} x {args.context}: "
        f"{flops / 1e6:.1f} MFLOP per token (matmuls)"
    )
    print(f"{'threads':>7} {'dtype':>9} {'tokens/s':>9} {'GFLOP/s':>8} {'matmul peak':>12} {'of peak':>8}")
    for threads in (int(value) for value in args.threads.split(",")):
        torch.set_num_threads(threads)
        rates, peaks = {}, {}
        for dtype, model in models.items():  # interleaved: both dtypes see the same machine load
            rates[dtype] = tokens_per_second(model, tokens, args.layer + 1, args.repeats)
            peaks[dtype] = matmul_gflops(getattr(torch, dtype))
            achieved = rates[dtype] * flops / 1e9
            print(
                f"{threads:>7} {dtype:>9} {rates[dtype]:>9.0f} {achieved:>8.1f} {peaks[dtype]:>12.1f} "
                f"{achieved / peaks[dtype]:>8.0%}"
            )
        speedup, matmul_ratio = rates["bfloat16"] / rates["float32"], peaks["bfloat16"] / peaks["float32"]
        print(
            f"{threads:>7} bfloat16 / float32 = {speedup:.2f}x; the CPU's bfloat16 / float32 matmul ratio "
            f"{matmul_ratio:.2f}x: {speedup / matmul_ratio:.2f} of it (target >= {TARGET_SHARE_OF_MATMUL_RATIO})"
        )
    full = tokens_per_second(models["float32"], tokens, None, args.repeats)
    print(
        f"full depth ({models['float32'].cfg.n_layers} layers), float32, {torch.get_num_threads()} threads: {full:.0f} tokens/s"
    )


if __name__ == "__main__":
    main()
