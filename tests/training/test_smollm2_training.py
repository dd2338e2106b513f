"""Masked training on the real embedded SmolLM2 (slow: each test trains for up to a minute or two)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from sae_lens import SAE, LoggingConfig
from sae_lens.util import get_special_token_ids
from training_helpers import REPO_NAME_ID, recorded_inputs

from sae_mask_plugin import MaskedLanguageModelSAETrainingRunner, MaskingConfig, make_runner_config, train_sae
from sae_mask_plugin.calibration import calibrate_saved_sae, calibration_activations, fvu_and_l0
from sae_mask_plugin.clean_activations import clean_token_activations
from sae_mask_plugin.embedded.corpus import load_calibration_texts
from sae_mask_plugin.masking.mask_token import choose_mask_token, measure_mask_tokens, sample_token_batch
from sae_mask_plugin.sae_metadata import read_masking_record
from sae_mask_plugin.training import MaskTokenNormError
from sae_mask_plugin.training.cli import main as train_main

pytestmark = pytest.mark.slow

SHORT_RUN = {
    "hook_name": "blocks.6.hook_resid_post",
    "context_size": 64,
    "store_batch_size_prompts": 8,
    "n_batches_in_buffer": 20,  # SAELens mixes n_batches_in_buffer x 62 positions: at least one batch
    "train_batch_size_tokens": 1024,
    "training_tokens": 20 * 1024,
}

ACCEPTANCE_MIN_ALIVE = 0.8
"""The baseline's alive fraction on the 32,768 unseen tokens, before calibration, at half the default budget with
the short-run AuxK window: measured 0.848 (Matryoshka BatchTopK; SAELens's 1,000-step window left about half the
latents dead). The demo's 4,096-wide baselines at block 6 are 0.96 / 0.97 alive (k 16 / 32) on the core eval's
32,768 tokens after 400k tokens, 0.60 / 0.72 after 200k (`docs/example_report/`, `recipes/cpu_demo_quick.yaml`)."""
ACCEPTANCE_TRAINING_TOKENS = 100_000
"""Half the default budget: the LLM pass dominates the test's time, and the checks hold at either length (at
100k tokens measured, the embedded model in float32: unseen FVU 0.371 baseline / 0.361 masked, calibrated L0
32.92 / 32.64 at k 32)."""


@pytest.mark.parametrize("architecture", ["matryoshka_batchtopk", "batchtopk"])
def test_masked_training_on_smollm2(architecture, tmp_path, embedded_model, corpus, monkeypatch):
    """The LLM sees masked tokens, SAELens's in-training evals see clean ones, the loss falls, and the saved SAE
    loads with stock SAELens (without the plugin imported)."""
    monkeypatch.setenv("WANDB_MODE", "disabled")  # in-training evals run only with W&B logging on
    cfg = make_runner_config(
        architecture,
        masking=MaskingConfig(p=0.3, mask_token="<repo_name>"),
        sae={"d_sae": 1024, "k": 16},
        logger=LoggingConfig(log_to_wandb=True, wandb_log_frequency=10, eval_every_n_wandb_logs=1),
        n_eval_batches=1,
        eval_batch_size_prompts=2,
        output_path=str(tmp_path / "sae"),
        checkpoint_path=str(tmp_path / "checkpoints"),
        **SHORT_RUN,
    )
    runner = MaskedLanguageModelSAETrainingRunner(
        cfg, override_model=embedded_model, override_dataset=corpus, init_b_dec="mean"
    )
    losses: list[float] = []
    forward = runner.sae.training_forward_pass

    def recording_forward(step_input):
        output = forward(step_input)
        losses.append(float(output.loss))
        return output

    runner.sae.training_forward_pass = recording_forward
    evaluator, eval_spans = runner.evaluator, []
    with recorded_inputs(embedded_model) as fed:

        def recording_evaluator(*args, **kwargs):
            start = len(fed)
            metrics = evaluator(*args, **kwargs)
            eval_spans.append((start, len(fed)))
            return metrics

        runner.evaluator = recording_evaluator
        runner.run()

    in_eval = {i for start, end in eval_spans for i in range(start, end)}
    training = torch.cat([fed[i].flatten() for i in range(len(fed)) if i not in in_eval])
    evals = [fed[i] for i in sorted(in_eval)]
    assert len(eval_spans) == 2 and evals
    assert 0.22 < float((training == REPO_NAME_ID).float().mean()) < 0.32
    assert not any(bool((batch == REPO_NAME_ID).any()) for batch in evals)
    assert len(losses) == 20 and sum(losses[-3:]) < 0.8 * sum(losses[:3])

    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from sae_lens import SAE; sae = SAE.load_from_disk(sys.argv[1]); "
            "assert 'sae_mask_plugin' not in sys.modules; "
            "print(json.dumps([type(sae).__name__, sae.cfg.d_sae, sae.cfg.metadata.masking]))",
            str(tmp_path / "sae"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    name, d_sae, masking = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert name == "JumpReLUSAE" and d_sae == 1024
    assert masking["p"] == 0.3 and masking["mask_token"] == REPO_NAME_ID and masking["strategy"] == "token"
    assert masking["mask_token_string"] == "<repo_name>" and 0.5 < masking["first_batch_norm_ratio"] < 2.0


def test_mask_tokens_are_measured_and_an_attention_sink_token_stops_training(
    tmp_path, embedded_model, corpus
):
    """DESIGN pilot: `<|endoftext|>` mid-text is an attention sink at layer 12; the default token is near 1."""
    hook = "blocks.12.hook_resid_post"
    tokens = sample_token_batch(embedded_model, corpus, n_sequences=4, context_size=64)
    special = get_special_token_ids(embedded_model.tokenizer)
    candidates = measure_mask_tokens(embedded_model, hook, tokens, protected_ids=special)
    ratios = {c.token: c.norm_ratio for c in candidates}
    assert ratios["<|endoftext|>"] > 10.0
    chosen = choose_mask_token(candidates)
    assert chosen.special and 0.8 <= chosen.norm_ratio <= 1.25

    cfg = make_runner_config(
        "batchtopk",
        masking=MaskingConfig(p=0.3, mask_token="<|endoftext|>"),
        sae={"d_sae": 256, "k": 8},
        hook_name=hook,
        context_size=64,
        store_batch_size_prompts=2,
        train_batch_size_tokens=512,
        training_tokens=4096,
        output_path=str(tmp_path / "sae"),
    )
    runner = MaskedLanguageModelSAETrainingRunner(cfg, override_model=embedded_model, override_dataset=corpus)
    with pytest.raises(MaskTokenNormError) as error:
        runner.run()
    message = str(error.value)
    assert "mask token id 0" in message and "Better mask tokens on this batch: " in message
    assert chosen.token in message.split("Better mask tokens on this batch: ")[1]
    assert not (tmp_path / "sae").exists()


def test_acceptance_masked_sae_stays_alive_and_close_to_baseline(tmp_path, embedded_model, corpus):
    """Default settings (Matryoshka BatchTopK 4096, k 32, layer 12) but half the default 200k training tokens, and
    p = 0.3 with the mask token chosen by measurement, on the embedded default. On clean text no training run read
    (the calibration split's second half; calibration reads its first 32,768 tokens): the masked SAE keeps
    L0 >= 0.5 k and FVU <= the baseline's + 0.15; after clean-text threshold calibration both SAEs fire about k
    latents per token there. Calibrated on other draws of the calibration split the same SAEs land between -1.2 %
    and +6.8 % of k here, the same for every SAE (scripts/calibration_accuracy.py, docs/smollm2_study/first_edition): the text
    draw's own spread, so the check allows 5 %."""
    defaults = make_runner_config()
    hook, positions = defaults.hook_name, defaults.seqpos_slice
    texts = load_calibration_texts(show_progress=False)
    unseen = clean_token_activations(embedded_model, hook, texts[len(texts) // 2 :], 32_768, 128, positions)
    results, alive = {}, {}
    for name, masking in {"baseline": None, "masked": MaskingConfig(p=0.3)}.items():
        cfg = make_runner_config(
            masking=masking, training_tokens=ACCEPTANCE_TRAINING_TOKENS, output_path=str(tmp_path / name)
        )
        train_sae(cfg, override_model=embedded_model, override_dataset=corpus)
        sae = SAE.load_from_disk(str(tmp_path / name))
        results[name] = fvu_and_l0(sae, unseen)
        with torch.no_grad():
            alive[name] = float((sae.encode(unseen) > 0).any(dim=0).float().mean())
    k = defaults.sae.k
    (base_fvu, base_l0), (masked_fvu, masked_l0) = results["baseline"], results["masked"]
    print(
        f"unseen FVU / L0 / alive: baseline {base_fvu:.3f} / {base_l0:.1f} / {alive['baseline']:.3f}, "
        f"masked {masked_fvu:.3f} / {masked_l0:.1f} / {alive['masked']:.3f}"
    )
    assert alive["baseline"] >= ACCEPTANCE_MIN_ALIVE  # the short-run AuxK window keeps the latents alive
    record = read_masking_record(tmp_path / "masked")
    assert record is not None and record["first_batch_norm_ratio"] <= 2.0
    assert masked_l0 >= 0.5 * k
    assert masked_fvu <= base_fvu + 0.15
    assert base_fvu < 0.5  # the baseline itself learned something

    calibration = calibration_activations(embedded_model, hook, seqpos_slice=positions, show_progress=False)
    for name in results:
        calibrate_saved_sae(tmp_path / name, calibration, seqpos_slice=positions)
        _, calibrated_l0 = fvu_and_l0(SAE.load_from_disk(str(tmp_path / name)), unseen)
        print(f"{name}: L0 on unseen clean text after calibration {calibrated_l0:.2f} (k = {k})")
        assert calibrated_l0 == pytest.approx(k, rel=0.05)


def test_train_command_trains_and_saves(tmp_path):
    out = tmp_path / "sae"
    argv = [
        "--hook_name",
        "blocks.1.hook_resid_post",
        "--d_sae",
        "128",
        "--k",
        "8",
        "--context_size",
        "32",
        "--store_batch_size_prompts",
        "4",
        "--n_batches_in_buffer",
        "16",
        "--train_batch_size_tokens",
        "256",
        "--training_tokens",
        "2048",
        "--mask_token",
        "<repo_name>",
        "--output_path",
        str(out),
    ]
    assert train_main(argv) == 0
    record = read_masking_record(out)
    assert record is not None and record["mask_token"] == REPO_NAME_ID and record["p"] == 0.3
    cfg = json.loads((out / "cfg.json").read_text())
    assert cfg["d_sae"] == 128 and cfg["metadata"]["hook_name"] == "blocks.1.hook_resid_post"
