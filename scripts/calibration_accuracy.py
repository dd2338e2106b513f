"""How close to k does clean-text threshold calibration land on text it did not read, by calibration tokens?

    python scripts/calibration_accuracy.py --sae DIR [DIR ...] [--out calibration_accuracy.json]

For each saved BatchTopK-family SAE (trained with the embedded default's window positions): clean activations of
the calibration split's first half (calibration reads this half) and 32,768 tokens of its second half (read by
nothing). The threshold is set on the first n tokens of the first half (n = 8,192 ... 65,536, as the runner
option `calibration_tokens` would) and on the *last* 32,768 of the first half (a disjoint draw of the same size),
and L0 is measured on the unseen tokens: the spread between draws shows how much of the error is sampling.
Thresholds are set on the SAEs loaded in memory; the saved SAEs are not changed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sae_lens import SAE

from sae_mask_plugin import load_embedded_model
from sae_mask_plugin.calibration.threshold import calibrate_sae, mean_l0
from sae_mask_plugin.clean_activations import clean_token_activations
from sae_mask_plugin.embedded.corpus import load_calibration_texts
from sae_mask_plugin.files import write_json_atomic
from sae_mask_plugin.sae_metadata import saved_training_k, trained_positions

CONTEXT_SIZE = 128
UNSEEN_TOKENS = 32_768
CALIBRATION_SIZES = (8_192, 16_384, 32_768, 65_536)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sae", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=Path("calibration_accuracy.json"))
    args = parser.parse_args()

    saes = {path: SAE.load_from_disk(str(path), device="cpu") for path in args.sae}
    hooks = {sae.cfg.metadata.hook_name for sae in saes.values()}
    positions = {trained_positions(sae.cfg.metadata) for sae in saes.values()}
    if len(hooks) != 1 or len(positions) != 1:
        parser.error("the SAEs must share one hook and one seqpos_slice")
    hook, seqpos_slice = hooks.pop(), positions.pop()

    model = load_embedded_model()
    texts = load_calibration_texts(show_progress=False)
    first_half, second_half = texts[: len(texts) // 2], texts[len(texts) // 2 :]
    calibration = clean_token_activations(
        model, hook, first_half, max(CALIBRATION_SIZES), CONTEXT_SIZE, seqpos_slice
    )
    unseen = clean_token_activations(model, hook, second_half, UNSEEN_TOKENS, CONTEXT_SIZE, seqpos_slice)

    draws = {f"first {n}": calibration[:n] for n in CALIBRATION_SIZES}
    draws[f"last {UNSEEN_TOKENS}"] = calibration[-UNSEEN_TOKENS:]
    rows = []
    for path, sae in saes.items():
        k = saved_training_k(json.loads((path / "cfg.json").read_text()))
        for draw, tokens in draws.items():
            calibrate_sae(sae, tokens, k)
            unseen_l0 = mean_l0(sae, unseen)
            rows.append(
                {
                    "sae": path.name,
                    "k": k,
                    "calibrated_on": draw,
                    "unseen_l0": unseen_l0,
                    "relative_error": unseen_l0 / k - 1,
                }
            )
            print(json.dumps(rows[-1]))
    write_json_atomic(
        args.out, {"hook": hook, "seqpos_slice": seqpos_slice, "unseen_tokens": UNSEEN_TOKENS, "rows": rows}
    )


if __name__ == "__main__":
    main()
