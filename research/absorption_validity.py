"""Where does first-letter absorption carry signal on the embedded default? The gated eval over layer, width, k and
training tokens.

One LLM pass per hook caches residual activations of the embedded corpus (SmolLM2 in the machine's default LLM dtype); TopK SAEs are
trained on them with SAELens's own `SAETrainer` (snapshots during training give the training-token trend); each
SAE then gets the gated absorption eval, whose LLM side (probe data, absorption prompts) is cached once per
hook and word list, so a further SAE costs SAE encodes and probe fits only. Every stage resumes from what is on
disk. `research/absorption_validity_publish.py` turns the results into `docs/absorption_validity/`.

    python -m research.absorption_validity --out outputs/absorption_validity
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sae_mask_plugin.embedded.model import EMBEDDED_MODEL_NAME
from sae_mask_plugin.files import atomic_file, write_json_atomic
from sae_mask_plugin.llm_dtype import cpu_model, default_llm_dtype

CONTEXT_SIZE = 128
SEQPOS_SLICE = (2, None)  # as the demo recipe trains: the first text token of a window carries massive norms
BATCH_TOKENS = 2048
LR = 4e-3
SEED = 0


ARCHITECTURES = ("topk", "matryoshka_batchtopk")


@dataclass(frozen=True)
class SaeSpec:
    """One SAE of the grid (a SAELens training architecture); snapshots are saved at 1 / (N_CHECKPOINTS + 1),
    2 / (N_CHECKPOINTS + 1), ... of its training."""

    layer: int
    d_sae: int
    k: int
    architecture: str = "topk"

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")

    @property
    def hook_name(self) -> str:
        return f"blocks.{self.layer}.hook_resid_post"

    @property
    def name(self) -> str:
        suffix = "" if self.architecture == "topk" else "-matryoshka"
        return f"L{self.layer}-w{self.d_sae}-k{self.k}{suffix}"


# ordered so that partial results already answer the main questions on a 2-core machine: block 6 (mid-depth)
# at two widths, then block 3, then block 12 (the first-edition study's hook, the costliest LLM side), then width
# and k at block 6 (k 8 and 4 last: letters passing fell from k 16 to 32 to 64)
GRID = (
    SaeSpec(6, 8192, 32),
    SaeSpec(6, 2048, 32),
    SaeSpec(3, 8192, 32),
    SaeSpec(12, 8192, 32),
    SaeSpec(12, 2048, 32),
    SaeSpec(6, 16384, 32),
    SaeSpec(6, 8192, 16),
    SaeSpec(6, 8192, 64),
    SaeSpec(6, 8192, 8),
    SaeSpec(6, 8192, 4),
    # the low-L0 search for the study's absorption arm (run on ~1 M fresh tokens, AuxK on): k between and around
    # the pilot's 4 and 8, width 16k, and the study's architecture
    SaeSpec(6, 8192, 6),
    SaeSpec(6, 8192, 12),
    SaeSpec(6, 16384, 8),
    SaeSpec(6, 16384, 4),
    SaeSpec(6, 8192, 8, "matryoshka_batchtopk"),
    SaeSpec(6, 8192, 4, "matryoshka_batchtopk"),
)
N_CHECKPOINTS = 2


def cache_activations(out: Path, layer: int, n_tokens: int, model) -> None:
    """`acts/blocks.<layer>.pt`: [n_tokens, d_model] clean-token activations of the embedded corpus, stored in
    bfloat16 (the LLM runs in its own dtype)."""
    from sae_mask_plugin.clean_activations import clean_token_activations
    from sae_mask_plugin.embedded.corpus import load_embedded_corpus

    path = out / "acts" / f"blocks.{layer}.pt"
    if path.is_file():
        return
    texts = load_embedded_corpus(seed=SEED, show_progress=False)["text"][:20_000]
    started = time.perf_counter()
    acts = clean_token_activations(
        model, f"blocks.{layer}.hook_resid_post", texts, n_tokens, CONTEXT_SIZE, SEQPOS_SLICE
    )
    with atomic_file(path) as temporary:
        torch.save(acts.to(torch.bfloat16), temporary)
    print(f"cached {n_tokens} tokens at block {layer} in {time.perf_counter() - started:.0f} s", flush=True)


class CachedBatches:
    """Shuffled `[BATCH_TOKENS, d_model]` float32 batches of cached activations, epoch after epoch (seeded)."""

    def __init__(self, acts: torch.Tensor, seed: int):
        self.acts = acts
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)

    def __iter__(self) -> CachedBatches:
        return self

    def __next__(self) -> torch.Tensor:
        if len(self.order) < BATCH_TOKENS:
            self.order = torch.randperm(len(self.acts), generator=self.generator)
        batch, self.order = self.order[:BATCH_TOKENS], self.order[BATCH_TOKENS:]
        return self.acts[batch].float()


def sae_folder(out: Path, spec: SaeSpec, seed: int) -> Path:
    """`saes/<name>` for seed 0 (the first rows' layout), `saes/<name>-s<seed>` otherwise."""
    return out / "saes" / (spec.name if seed == SEED else f"{spec.name}-s{seed}")


def train_sae(
    out: Path,
    spec: SaeSpec,
    training_tokens: int,
    held_out: int,
    seed: int = SEED,
    dead_feature_window: int | None = None,
    sparse_step: bool = False,
) -> list[Path]:
    """Train `spec` on the cached activations (the last `held_out` rows kept out; `seed` sets the initial weights
    and the batch order; `dead_feature_window` in steps, None: SAELens's; `sparse_step`: a TopK SAE takes the
    plugin's sparse step, `training.sparse_step`); returns its saved snapshots (`<sae_folder>/tokens_<n>`), the
    final one last."""
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY
    from sae_lens.training.sae_trainer import SAETrainer

    from sae_mask_plugin.training.defaults import complete_sae_config, sae_config_kwargs
    from sae_mask_plugin.training.sparse_step import with_sparse_step

    folder = sae_folder(out, spec, seed)
    final = folder / f"tokens_{training_tokens}"
    if (final / "cfg.json").is_file():
        return sorted(folder.glob("tokens_*"), key=lambda p: int(p.name.split("_")[1]))
    acts = torch.load(out / "acts" / f"blocks.{spec.layer}.pt")[:-held_out]
    torch.manual_seed(seed)
    sae_class, config_class = SAE_TRAINING_CLASS_REGISTRY[spec.architecture]
    kwargs = sae_config_kwargs(config_class, d_in=acts.shape[1], d_sae=spec.d_sae, k=spec.k, dtype="float32")
    cfg = complete_sae_config(config_class(**kwargs))
    cfg.metadata.model_name = EMBEDDED_MODEL_NAME
    cfg.metadata.hook_name = spec.hook_name
    sae = sae_class(cfg)
    sae.b_dec.data.copy_(acts[:65_536].float().mean(dim=0))  # short runs need b_dec at the mean
    sae = with_sparse_step(sae) if sparse_step else sae
    window = {} if dead_feature_window is None else {"dead_feature_window": dead_feature_window}
    trainer_cfg = SAETrainerConfig(
        total_training_samples=training_tokens,
        train_batch_size_samples=BATCH_TOKENS,
        lr=LR,
        lr_end=LR,
        n_checkpoints=N_CHECKPOINTS,
        logger=LoggingConfig(log_to_wandb=False),
        **window,
    )

    def snapshot(checkpoint_path) -> None:  # noqa: ARG001 (SAELens passes its own path, None here)
        trainer.sae.save_inference_model(folder / f"tokens_{trainer.n_training_samples}")

    trainer = SAETrainer(
        cfg=trainer_cfg, sae=sae, data_provider=CachedBatches(acts, seed), save_checkpoint_fn=snapshot
    )
    started = time.perf_counter()
    trainer.fit()
    sae.save_inference_model(final)
    write_json_atomic(
        folder / "training.json",
        {
            "seconds": time.perf_counter() - started,
            "tokens": training_tokens,
            "seed": seed,
            "sae_step": _step_name(sae),
            **window,
        },
    )
    return sorted(folder.glob("tokens_*"), key=lambda p: int(p.name.split("_")[1]))


def _step_name(sae) -> str:
    """`sparse` for the plugin's sparse TopK step, `saelens` for SAELens's own."""
    from sae_mask_plugin.training.sparse_step import SparseTopKTrainingSAE

    return "sparse" if isinstance(sae, SparseTopKTrainingSAE) else "saelens"


@torch.no_grad()
def held_out_quality(out: Path, sae_path: Path, layer: int, held_out: int) -> dict[str, float]:
    """L0 and explained variance on the held-out cached rows."""
    from sae_lens import SAE

    acts = torch.load(out / "acts" / f"blocks.{layer}.pt")[-held_out:].float()
    sae = SAE.load_from_disk(str(sae_path), device="cpu")
    latents = sae.encode(acts)
    recon = sae.decode(latents)
    residual = (acts - recon).pow(2).sum() / (acts - acts.mean(dim=0)).pow(2).sum()
    return {"l0": float((latents > 0).float().sum(dim=1).mean()), "explained_variance": float(1 - residual)}


def evaluate(out: Path, sae_path: Path, run_name: str, words_per_letter: int | None, model) -> dict:
    """The gated absorption eval of one saved SAE (results under `evals/<words>/`), as its eval JSON."""
    from sae_lens import SAE

    from sae_mask_plugin.evals.absorption.eval_config import AbsorptionEvalConfig
    from sae_mask_plugin.evals.absorption.main import run_eval

    words = "all" if words_per_letter is None else str(words_per_letter)
    folder = out / "evals" / f"words-{words}"
    result = folder / f"{run_name}_custom_sae_eval_results.json"
    if not result.is_file():
        config = AbsorptionEvalConfig(
            model_name=EMBEDDED_MODEL_NAME,
            words_per_letter=words_per_letter,
            llm_batch_size=32,
            precalc_k_sparse_probe_sae_acts=True,
        )
        sae = SAE.load_from_disk(str(sae_path), device="cpu")
        started = time.perf_counter()
        run_eval(
            config, [(run_name, sae)], "cpu", str(folder), model=model, cache_path=str(out / "eval_cache")
        )
        data = json.loads(result.read_text())
        data["wall_seconds"] = time.perf_counter() - started
        write_json_atomic(result, data)
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/absorption_validity"))
    parser.add_argument("--cached-tokens", type=int, default=262_144)
    parser.add_argument("--held-out", type=int, default=8_192)
    parser.add_argument(
        "--training-tokens", type=int, default=264_192, help="about one epoch of the cache (129 batches)"
    )
    parser.add_argument(
        "--words-per-letter",
        type=int,
        action="append",
        default=None,
        help="word lists to evaluate (default: 600; at 300 only 16 letters reach the gate's word minimum)",
    )
    parser.add_argument(
        "--sae",
        action="append",
        default=None,
        choices=[spec.name for spec in GRID],
        help="run only these SAEs of the grid (default: all, in order)",
    )
    parser.add_argument(
        "--llm-dtype",
        default=default_llm_dtype().dtype,
        choices=["bfloat16", "float32"],
        help="the LLM's dtype (default: bfloat16 where the CPU has native bf16, else float32)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help="the SAEs' initial weights and batch order (the cache is shared)",
    )
    parser.add_argument(
        "--dead-feature-window",
        type=int,
        default=None,
        help="AuxK's dead-latent window in steps (default: SAELens's 1,000, longer than these runs: AuxK off)",
    )
    parser.add_argument(
        "--sparse-step",
        action="store_true",
        help="train TopK SAEs with the plugin's sparse step (same loss and gradients, ~4x faster)",
    )
    args = parser.parse_args()
    if args.dead_feature_window is not None and args.dead_feature_window < 1:
        parser.error(f"--dead-feature-window must be >= 1, got {args.dead_feature_window}")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    from sae_mask_plugin.embedded.model import load_embedded_model

    model = load_embedded_model(dtype=getattr(torch, args.llm_dtype))
    rows_path = args.out / "rows.json"
    rows = json.loads(rows_path.read_text()) if rows_path.is_file() else {}
    word_lists = args.words_per_letter or [600]
    for spec in (spec for spec in GRID if args.sae is None or spec.name in args.sae):
        final = f"{sae_folder(args.out, spec, args.seed).name}-t{args.training_tokens}"
        if all(f"{final}-words{words}" in rows for words in word_lists):
            continue  # its rows are in (a resumed search whose SAEs are gone)
        cache_activations(args.out, spec.layer, args.cached_tokens + args.held_out, model)
        snapshots = train_sae(
            args.out,
            spec,
            args.training_tokens,
            args.held_out,
            args.seed,
            args.dead_feature_window,
            args.sparse_step,
        )
        for snapshot in snapshots:
            tokens = int(snapshot.name.split("_")[1])
            run_name = f"{snapshot.parent.name}-t{tokens}"
            for words in word_lists:
                key = f"{run_name}-words{words}"
                if key in rows:
                    continue
                result = evaluate(args.out, snapshot, run_name, words, model)
                rows[key] = {
                    "run": run_name,
                    "layer": spec.layer,
                    "d_sae": spec.d_sae,
                    "k": spec.k,
                    "architecture": spec.architecture,
                    "seed": args.seed,
                    "dead_feature_window": args.dead_feature_window,
                    "sae_step": json.loads((snapshot.parent / "training.json").read_text()).get(
                        "sae_step", "saelens"
                    ),
                    "training_tokens": tokens,
                    "words_per_letter": words,
                    "llm_dtype": args.llm_dtype,
                    "cpu_model": cpu_model(),
                    "cached_tokens": args.cached_tokens,
                    "eval_wall_seconds": result["wall_seconds"],
                    **held_out_quality(args.out, snapshot, spec.layer, args.held_out),
                    "metrics": result["eval_result_metrics"],
                    "absorption_gate": result["eval_result_unstructured"]["absorption_gate"],
                    "num_words": result["eval_result_unstructured"]["num_words"],
                }
                write_json_atomic(rows_path, rows)
                gate = result["eval_result_metrics"]["gate"]
                print(f"{key}: {gate['status']} ({result['wall_seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
