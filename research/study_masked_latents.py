"""How many of each SAE's latents fire mainly on masked positions of a masked training-like stream.

    python -m research.study_masked_latents SAE_DIR [SAE_DIR ...] [--masking-from MASKED_SAE_DIR] \
        [--tokens 65536] [--out masked_latents.json]
    python -m research.study_masked_latents --table docs/smollm2_study/masked_latents \
        [--update docs/smollm2_study/README.md]

Each masked SAE is measured on a stream masked with its own settings (mask token, p, strategy; masking seed =
the run's seed, on the embedded corpus in that seed's order, the window positions it trained on). A baseline has
no masking of its own: `--masking-from` names a masked SAE whose settings its stream takes, so a baseline shows how
many latents an SAE never trained on masked positions would spend there. Writes one row per SAE
(`report.masked_latents.MaskedPositionLatents` and the settings). `--table DIR` prints the table of every such
file in DIR (`report.masked_latents.masked_latents_table`), or with `--update` rewrites a markdown file's
`masked-latents` generated block with it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch
from sae_lens import SAE

from research.masked_latents import (
    masked_latents_table,
    masked_position_latents,
    masked_stream_activations,
)
from research.study_pages import update_block
from sae_mask_plugin import load_embedded_model
from sae_mask_plugin.embedded.corpus import load_embedded_corpus
from sae_mask_plugin.files import RUNNER_CFG_FILENAME, SAE_CFG_FILENAME, write_json_atomic
from sae_mask_plugin.llm_dtype import recorded_llm_dtype
from sae_mask_plugin.sae_metadata import read_masking_metadata, trained_positions

CONTEXT_SIZE = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("saes", type=Path, nargs="*", metavar="SAE_DIR")
    parser.add_argument("--table", type=Path, metavar="DIR", help="the table of the files in DIR instead")
    parser.add_argument(
        "--update", type=Path, metavar="MARKDOWN", help="--table: rewrite its block in MARKDOWN"
    )
    parser.add_argument(
        "--masking-from", type=Path, help="masked SAE whose masking a baseline's stream takes"
    )
    parser.add_argument("--tokens", type=int, default=65_536, help="stream positions per SAE")
    parser.add_argument("--out", type=Path, default=Path("masked_latents.json"))
    args = parser.parse_args()
    if args.table:
        if args.saes:
            parser.error("give SAE folders or --table, not both")
        return write_table(args.table, args.update)
    if not args.saes:
        parser.error("give the SAE folders to count latents of (or --table DIR)")
    if args.update:
        parser.error("--update goes with --table")
    fallback = read_masking_metadata(args.masking_from) if args.masking_from else None
    if args.masking_from and fallback is None:
        parser.error(f"--masking-from {args.masking_from} is not a masked SAE")
    plans = []
    for path in args.saes:
        masking = read_masking_metadata(path) or fallback
        if masking is None:
            parser.error(f"{path} is a baseline: give --masking-from MASKED_SAE_DIR")
        seed = json.loads((path / RUNNER_CFG_FILENAME).read_text()).get("seed", 0)
        plans.append((path, masking, seed))
    llm_dtypes = {
        recorded_llm_dtype(json.loads((path / SAE_CFG_FILENAME).read_text()).get("metadata"))
        for path in args.saes
    }
    if len(llm_dtypes) > 1:
        parser.error(
            f"the SAEs trained on LLMs of different dtypes ({', '.join(sorted(llm_dtypes))}): one at a time"
        )

    torch.set_num_threads(1)
    model = load_embedded_model(dtype=getattr(torch, llm_dtypes.pop()))  # the activations the SAEs trained on
    rows = []
    for path, masking, seed in plans:
        sae = SAE.load_from_disk(str(path), device="cpu")
        texts = load_embedded_corpus(seed=seed, show_progress=False)["text"]
        activations, masked = masked_stream_activations(
            model,
            sae.cfg.metadata.hook_name,
            masking,
            texts[: args.tokens],  # each text holds at least one token, so these are enough windows
            args.tokens,
            CONTEXT_SIZE,
            trained_positions(sae.cfg.metadata),
            seed=masking.seed if masking.seed is not None else seed,
        )
        counts = masked_position_latents(sae, activations, masked)
        rows.append(
            {
                "sae": path.name,
                "masking": masking.to_dict(),
                "own_masking": read_masking_metadata(path) is not None,
                **asdict(counts),
                "mainly_masked_fraction_of_firing": counts.mainly_masked_fraction_of_firing,
            }
        )
        print(json.dumps(rows[-1]))
    write_json_atomic(args.out, {"tokens": args.tokens, "context_size": CONTEXT_SIZE, "rows": rows})


def write_table(folder: Path, markdown: Path | None) -> None:
    """Print the table of the files in `folder`, or rewrite the `masked-latents` block of `markdown` with it."""
    files = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    if not files:
        raise SystemExit(f"no masked-latent files in {folder}")
    table = "\n".join(masked_latents_table(files))
    if markdown is None:
        print(table)
        return
    update_block(markdown, "masked-latents", table)
    print(f"updated: {markdown}")


if __name__ == "__main__":
    main()
