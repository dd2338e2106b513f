"""Counting the latents of a masked SAE that fire mainly on masked positions: on hand-made activations (where the
answer is known) and on a masked stream drawn through a tiny transformer with the real tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sae_lens import StandardSAE, StandardSAEConfig
from tiny_transformer import TINY_D_MODEL

from research.masked_latents import (
    masked_latents_table,
    masked_position_latents,
    masked_stream_activations,
)
from research.study_pages import block_names, fill_blocks
from sae_mask_plugin.masking.config import MaskingConfig

STUDY = Path(__file__).resolve().parents[2] / "docs" / "smollm2_study"
D_IN = TINY_D_MODEL  # the tiny transformer's width: the axis SAE reads its stream too


def _axis_sae() -> StandardSAE:
    """An SAE whose latent i fires exactly when input dimension i is positive (4 latents on D_IN dimensions)."""
    sae = StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=4))
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.W_enc[torch.arange(4), torch.arange(4)] = 1.0
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_latents_are_counted_by_where_they_fire():
    masked = torch.tensor([True, True, True, False, False, False, False, False])
    activations = torch.zeros(8, D_IN)
    activations[:3, 0] = 1.0  # latent 0: masked positions only
    activations[[0, 1, 3], 1] = 1.0  # latent 1: 2 of 3 firings masked (mainly masked)
    activations[[0, 3, 4], 2] = 1.0  # latent 2: 1 of 3 masked
    # latent 3 never fires
    counts = masked_position_latents(_axis_sae(), activations, masked, batch_size=3)
    assert counts.masked_fraction == pytest.approx(3 / 8)
    assert (counts.n_latents, counts.n_firing, counts.n_mainly_masked, counts.n_only_masked) == (4, 3, 2, 1)
    assert counts.mainly_masked_fraction_of_firing == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="boolean mask"):
        masked_position_latents(_axis_sae(), activations, masked.long())


def test_a_masked_stream_marks_the_positions_the_model_saw_masked(tiny_model):
    texts = [f"text number {i} says something about the weather and the sea" for i in range(60)]
    mask_id = tiny_model.tokenizer.convert_tokens_to_ids("<repo_name>")
    masking = MaskingConfig(p=0.3, mask_token=mask_id)
    hook = "blocks.0.hook_resid_pre"  # token embedding + position embedding
    activations, masked = masked_stream_activations(
        tiny_model, hook, masking, texts, n_tokens=600, context_size=32, seqpos_slice=(2, None), seed=1
    )
    assert activations.shape == (600, D_IN) and masked.shape == (600,) and masked.dtype == torch.bool
    assert 0.2 < masked.float().mean() < 0.4
    # exactly the masked positions hold the mask token's embedding (plus their position's)
    minus_mask = activations - tiny_model.W_E[mask_id].detach()
    distance = (minus_mask[:, None, :] - tiny_model.W_pos.detach()[None]).abs().amax(dim=-1).amin(dim=-1)
    is_mask_embedding = distance < 1e-6
    assert torch.equal(is_mask_embedding, masked)
    again, masked_again = masked_stream_activations(
        tiny_model, hook, masking, texts, n_tokens=600, context_size=32, seqpos_slice=(2, None), seed=1
    )
    assert torch.equal(masked, masked_again) and torch.allclose(activations, again)
    counts = masked_position_latents(_axis_sae(), activations, masked)
    assert counts.n_tokens == 600 and counts.masked_fraction == pytest.approx(masked.float().mean().item())
    with pytest.raises(ValueError, match="resolved token id"):
        masked_stream_activations(
            tiny_model, hook, MaskingConfig(p=0.3, mask_token="<repo_name>"), texts, 600, 32, (2, None)
        )


def _row(sae: str, p: float, seed: int, own: bool, mainly: int, loss: str = "all") -> dict:
    masking = {"p": p, "strategy": "token", "loss_positions": loss, "seed": seed}
    return {
        "sae": sae,
        "masking": masking,
        "own_masking": own,
        "n_firing": 100 + mainly,
        "n_mainly_masked": mainly,
        "n_only_masked": mainly // 2,
    }


def test_the_table_groups_arms_and_k_over_seeds():
    files = [
        {
            "rows": [
                _row("m-k32-w8-p0.3-token-s0", 0.3, 0, True, 10),
                _row("m-k32-w8-p0-s0", 0.3, 0, False, 40),
            ]
        },
        {
            "rows": [
                _row("m-k32-w8-p0.3-token-s1", 0.3, 1, True, 20),
                _row("m-k32-w8-p0-s1", 0.3, 1, False, 40),
            ]
        },
        {"rows": [_row("m-k64-w8-p0.3-token-loss_positions_unmasked-s0", 0.3, 0, True, 4, "unmasked")]},
    ]
    assert masked_latents_table(files)[2:] == [
        "| baseline, on the stream of p=0.3 token | 32 | 0, 1 | 140 | 40 | 20 |",
        "| masked p=0.3 token | 32 | 0, 1 | 115 (110–120) | 15 (10–20) | 8 (5–10) |",
        "| masked p=0.3 token unmasked-loss | 64 | 0 | 104 | 4 | 2 |",
    ]


def test_the_study_readme_table_is_regenerated_from_the_files():
    files = [json.loads(path.read_text()) for path in sorted((STUDY / "masked_latents").glob("*.json"))]
    text = (STUDY / "README.md").read_text()
    assert "masked-latents" in block_names(text)
    table = "\n".join(masked_latents_table(files))
    assert fill_blocks(text, {"masked-latents": table}, keep_others=True) == text, (
        "stale: python -m research.study_masked_latents --table docs/smollm2_study/masked_latents "
        "--update docs/smollm2_study/README.md"
    )


def test_the_study_pages_reading_holds_for_every_counted_seed():
    """The study page reads the counts as "training on masked positions does not spend latents on the mask token;
    more of its latents never fire": in every seed's file, each masked p 0.3 SAE has fewer latents firing, and
    fewer firing mainly on masked positions, than the baseline of its k and seed on the same stream."""
    seed_files = sorted((STUDY / "masked_latents").glob("seed*.json"))
    assert seed_files
    for path in seed_files:
        rows = {row["sae"]: row for row in json.loads(path.read_text())["rows"]}
        masked = [name for name in rows if "-p0.3-token-s" in name]
        assert masked, path
        for name in masked:
            baseline = rows[name.replace("-p0.3-token-", "-p0-")]
            assert rows[name]["n_firing"] < baseline["n_firing"], name
            assert rows[name]["n_mainly_masked"] < baseline["n_mainly_masked"], name
