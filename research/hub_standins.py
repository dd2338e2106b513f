"""Build STAND-IN hub checkpoints and data so the paper recipes run offline under their real names.

    python -m research.hub_standins --hf-home /tmp/standin-hf [--models pythia-160m-deduped gemma-2-2b]
    export HF_HOME=/tmp/standin-hf HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    sae-mask sweep paper_pythia160m --set ...     # TransformerLens loads EleutherAI/pythia-160m-deduped from there

What it writes into a Hugging Face cache (`$HF_HOME/hub`, `$HF_HOME/datasets`), under the real repo ids:
- models--EleutherAI--pythia-160m-deduped and models--google--gemma-2-2b: the exact architecture and config of the
  real checkpoints (same `config.json` fields, same parameter count), with RANDOM weights. Pythia is saved in
  float32, Gemma-2-2B in bfloat16 (its 2.6 B parameters take 5.2 GB instead of 10.5 GB).
- A STAND-IN tokenizer per model: a byte-level BPE trained on the plugin's embedded corpus, with the real
  special tokens at their real ids and the real BOS behaviour (Pythia adds none; Gemma adds `<bos>`), but not the
  real vocabulary (its 50,304 / 256,000 embedding rows are kept; ids past the stand-in vocabulary never occur).
- datasets cache monology___pile-uncopyrighted: a few thousand texts of the embedded corpus (real text, not the
  Pile) with the Pile's `text` / `meta` columns, which `datasets.load_dataset("monology/pile-uncopyrighted")`
  finds offline, streaming or not.

Every file says it is a stand-in (`standin.json`, `_name_or_path`, the config's `standin` field, the dataset's
`meta.pile_set_name`). Nothing here is downloaded. Results computed on these checkpoints measure the pipeline
(memory, tokens/s, that every stage runs), never the models.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STANDIN_NOTE = "STAND-IN: random weights and a stand-in tokenizer, built offline by research/hub_standins.py"
STANDIN_REVISION = "0000000000000000000000000000000000005a1d"
"""The fake commit hash of every stand-in snapshot (a real cache names snapshots by commit)."""
STANDIN_DATASET = "monology/pile-uncopyrighted"
STANDIN_DATASET_HASH = "standin"
DEFAULT_DATASET_TEXTS = 4000
TOKENIZER_VOCAB = 8192
"""Stand-in vocabulary size (ids beyond it exist in the embedding but are never produced)."""
TOKENIZER_TRAINING_TEXTS = 40_000


@dataclass(frozen=True)
class StandIn:
    """One hub checkpoint to imitate: its repo id, exact config fields, storage dtype and tokenizer specials."""

    repo_id: str
    config: dict[str, Any]
    dtype: str
    parameters: int
    """The real checkpoint's parameter count (checked against the built model)."""
    special_tokens: tuple[str, ...]
    """Special tokens in id order from 0, as in the real tokenizer."""
    tokenizer_config: dict[str, Any] = field(default_factory=dict)
    add_bos: bool = False


PYTHIA_160M = StandIn(
    repo_id="EleutherAI/pythia-160m-deduped",
    config={
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "bos_token_id": 0,
        "eos_token_id": 0,
        "hidden_act": "gelu",
        "hidden_size": 768,
        "initializer_range": 0.02,
        "intermediate_size": 3072,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 2048,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "rotary_emb_base": 10000,
        "rotary_pct": 0.25,
        "tie_word_embeddings": False,
        "use_cache": True,
        "use_parallel_residual": True,
        "vocab_size": 50304,
    },
    dtype="float32",
    parameters=162_322_944,
    special_tokens=("<|endoftext|>", "<|padding|>"),
    tokenizer_config={
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "add_bos_token": False,
        "add_eos_token": False,
    },
)

GEMMA_2_2B = StandIn(
    repo_id="google/gemma-2-2b",
    config={
        "architectures": ["Gemma2ForCausalLM"],
        "model_type": "gemma2",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": 50.0,
        "bos_token_id": 2,
        "cache_implementation": "hybrid",
        "eos_token_id": 1,
        "final_logit_softcapping": 30.0,
        "head_dim": 256,
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 2304,
        "initializer_range": 0.02,
        "intermediate_size": 9216,
        "max_position_embeddings": 8192,
        "num_attention_heads": 8,
        "num_hidden_layers": 26,
        "num_key_value_heads": 4,
        "pad_token_id": 0,
        "query_pre_attn_scalar": 256,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "tie_word_embeddings": True,
        "use_cache": True,
        "vocab_size": 256000,
    },
    dtype="bfloat16",
    parameters=2_614_341_888,
    special_tokens=("<pad>", "<eos>", "<bos>", "<unk>", "<mask>"),
    tokenizer_config={
        "pad_token": "<pad>",
        "eos_token": "<eos>",
        "bos_token": "<bos>",
        "unk_token": "<unk>",
        "add_bos_token": True,
        "add_eos_token": False,
    },
    add_bos=True,
)

STANDINS: dict[str, StandIn] = {"pythia-160m-deduped": PYTHIA_160M, "gemma-2-2b": GEMMA_2_2B}
"""Stand-ins by the TransformerLens name the recipes use."""


def hub_cache(hf_home: Path) -> Path:
    return hf_home / "hub"


def snapshot_dir(hf_home: Path, repo_id: str, kind: str = "models") -> Path:
    """`<hub>/<kind>--<org>--<name>/snapshots/<revision>`, the folder `from_pretrained(repo_id)` reads offline."""
    return hub_cache(hf_home) / f"{kind}--{repo_id.replace('/', '--')}" / "snapshots" / STANDIN_REVISION


def is_built(hf_home: Path, name: str) -> bool:
    """True when the stand-in of `name` is complete (its marker is written last)."""
    return (snapshot_dir(hf_home, STANDINS[name].repo_id) / "standin.json").is_file()


def training_texts(count: int) -> list[str]:
    """The first `count` texts of the embedded corpus (real text shipped with sae-probes), in a fixed order."""
    from sae_mask_plugin.embedded.corpus import load_embedded_corpus

    corpus = load_embedded_corpus(seed=0, show_progress=False)
    return corpus.select(range(min(count, len(corpus))))["text"]


def build_tokenizer(standin: StandIn, texts: list[str]):
    """A byte-level BPE `PreTrainedTokenizerFast` with the real special tokens at ids 0.. and the real BOS rule."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=list(standin.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos = standin.tokenizer_config["bos_token"]
    if standin.add_bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))]
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    for index, token in enumerate(standin.special_tokens):
        assert tokenizer.token_to_id(token) == index, (token, tokenizer.token_to_id(token))
    special = {key: value for key, value in standin.tokenizer_config.items() if key.endswith("_token")}
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=2048, **special)


def build_model(standin: StandIn, tokenizer, target: Path, seed: int = 0) -> None:
    """Write config, random weights (in the stand-in's dtype) and tokenizer of `standin` into `target`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**standin.config)
    config.dtype = standin.dtype
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, standin.dtype))
    count = sum(parameter.numel() for parameter in model.parameters())
    if count != standin.parameters:
        raise RuntimeError(
            f"{standin.repo_id} stand-in has {count:,} parameters, the real one {standin.parameters:,}"
        )
    model.config.standin = STANDIN_NOTE
    model.save_pretrained(target, safe_serialization=True)
    del model
    tokenizer.save_pretrained(target)
    tokenizer_config_path = target / "tokenizer_config.json"
    tokenizer_config = json.loads(tokenizer_config_path.read_text())
    tokenizer_config.update(standin.tokenizer_config, standin=STANDIN_NOTE)
    tokenizer_config_path.write_text(json.dumps(tokenizer_config, indent=2))


def publish_snapshot(hf_home: Path, repo_id: str, staging: Path, kind: str = "models") -> Path:
    """Move `staging` into the hub-cache layout of `repo_id` (snapshot + `refs/main`), replacing an old one."""
    snapshot = snapshot_dir(hf_home, repo_id, kind)
    if snapshot.exists():
        shutil.rmtree(snapshot)
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), snapshot)
    refs = snapshot.parents[1] / "refs"
    refs.mkdir(exist_ok=True)
    (refs / "main").write_text(STANDIN_REVISION)
    return snapshot


def build_standin_model(hf_home: Path, name: str, texts: list[str], force: bool = False) -> Path:
    """Build the stand-in checkpoint of `name` (a key of `STANDINS`) once; returns its snapshot folder."""
    standin = STANDINS[name]
    if is_built(hf_home, name) and not force:
        return snapshot_dir(hf_home, standin.repo_id)
    hub_cache(hf_home).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".standin-", dir=hub_cache(hf_home)))
    try:
        build_model(standin, build_tokenizer(standin, texts), staging)
        marker = {"note": STANDIN_NOTE, "repo_id": standin.repo_id, "dtype": standin.dtype}
        (staging / "standin.json").write_text(json.dumps(marker, indent=2))
        return publish_snapshot(hf_home, standin.repo_id, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build_standin_dataset(hf_home: Path, texts: list[str], force: bool = False) -> Path:
    """Write `texts` as the datasets-cache copy of `monology/pile-uncopyrighted` (train split, `text` + `meta`).

    `load_dataset("monology/pile-uncopyrighted", split="train", streaming=...)` with `HF_HUB_OFFLINE=1` then
    reads it ("Using the latest cached version of the dataset"), as it would read a real cached download."""
    from datasets.packaged_modules.json.json import Json

    namespace, name = STANDIN_DATASET.split("/")
    root = hf_home / "datasets"
    target = root / f"{namespace}___{name}" / "default" / "0.0.0" / STANDIN_DATASET_HASH
    if (target / "dataset_info.json").is_file() and not force:
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".standin-", dir=root) as staging:
        source = Path(staging) / "train.jsonl"
        meta = {"pile_set_name": "STAND-IN: sae-mask embedded corpus (sae-probes texts), not the Pile"}
        source.write_text("".join(json.dumps({"text": text, "meta": meta}) + "\n" for text in texts))
        builder = Json(
            cache_dir=str(Path(staging) / "cache"),
            dataset_name=name,
            repo_id=STANDIN_DATASET,
            data_files={"train": str(source)},
            hash=STANDIN_DATASET_HASH,
        )
        builder.download_and_prepare()
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        # The builder names its folder after a hash of the data files; the hub loader's cache is `default`.
        shutil.move(builder.cache_dir, target)
    return target


def build_all(
    hf_home: str | Path,
    names: list[str] | tuple[str, ...] = tuple(STANDINS),
    dataset_texts: int = DEFAULT_DATASET_TEXTS,
    force: bool = False,
) -> dict[str, Path]:
    """Build the stand-ins of `names` and the dataset stand-in under `hf_home`; returns their folders."""
    hf_home = Path(hf_home).expanduser().resolve()
    texts = training_texts(max(TOKENIZER_TRAINING_TEXTS, dataset_texts))
    built = {
        name: build_standin_model(hf_home, name, texts[:TOKENIZER_TRAINING_TEXTS], force) for name in names
    }
    built[STANDIN_DATASET] = build_standin_dataset(hf_home, texts[:dataset_texts], force)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hf-home", required=True, help="Hugging Face home to write (use it as HF_HOME)")
    parser.add_argument("--models", nargs="+", choices=sorted(STANDINS), default=sorted(STANDINS))
    parser.add_argument("--dataset-texts", type=int, default=DEFAULT_DATASET_TEXTS)
    parser.add_argument("--force", action="store_true", help="rebuild what exists")
    args = parser.parse_args(argv)
    for name, path in build_all(args.hf_home, args.models, args.dataset_texts, args.force).items():
        print(f"{name}: {path}")
    hf_home = Path(args.hf_home).expanduser().resolve()
    print(f"{STANDIN_NOTE}\nexport HF_HOME={hf_home} HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
