"""The sparse step computes SAELens's TopK-family loss and gradients (AuxK, Matryoshka levels and the BatchTopK
threshold included), and leaves SAELens's step in place where it cannot."""

from __future__ import annotations

import pytest
import torch
from sae_lens import (
    SAE,
    BatchTopKTrainingSAE,
    BatchTopKTrainingSAEConfig,
    MatryoshkaBatchTopKTrainingSAE,
    MatryoshkaBatchTopKTrainingSAEConfig,
    StandardTrainingSAE,
    StandardTrainingSAEConfig,
    TopKTrainingSAE,
    TopKTrainingSAEConfig,
)
from sae_lens.config import LoggingConfig
from sae_lens.saes.sae import TrainingSAE, TrainStepInput
from tiny_transformer import TINY_HOOK
from training_helpers import tiny_runner_settings, tiny_sae

from sae_mask_plugin import (
    MaskedLanguageModelSAETrainingRunner,
    MaskedMultiSAETrainingRunner,
    MaskedMultiSAETrainingRunnerConfig,
    MaskingConfig,
    make_runner_config,
)
from sae_mask_plugin.training.sparse_step import (
    GatheredPreActivation,
    SparseMatryoshkaBatchTopKTrainingSAE,
    SparseStepError,
    SparseTopKTrainingSAE,
    supports_sparse_step,
    with_sparse_step,
)

D_IN, D_SAE, K, BATCH = 32, 256, 8, 64
CONFIGS = {
    "topk": TopKTrainingSAEConfig,
    "batchtopk": BatchTopKTrainingSAEConfig,
    "matryoshka_batchtopk": MatryoshkaBatchTopKTrainingSAEConfig,
}
CLASSES = {
    "topk": TopKTrainingSAE,
    "batchtopk": BatchTopKTrainingSAE,
    "matryoshka_batchtopk": MatryoshkaBatchTopKTrainingSAE,
}


def _pair(architecture: str = "topk", **cfg) -> tuple[TrainingSAE, TrainingSAE]:
    torch.manual_seed(0)
    if architecture == "matryoshka_batchtopk":
        cfg.setdefault("matryoshka_widths", [16, 64, D_SAE])
    dense = CLASSES[architecture](CONFIGS[architecture](d_in=D_IN, d_sae=D_SAE, k=K, **cfg))
    with torch.no_grad():  # a trained-looking SAE: biases away from zero
        dense.b_enc.normal_(0, 0.1)
        dense.b_dec.normal_(0, 0.5)
    return dense, with_sparse_step(dense)


def _step(sae, x: torch.Tensor, dead: torch.Tensor | None):
    sae.zero_grad()
    out = sae.training_forward_pass(TrainStepInput(x, {}, dead, 1, False))
    out.loss.backward()
    grads = {name: param.grad.clone() for name, param in sae.named_parameters()}
    return out, grads


@pytest.mark.parametrize("architecture", list(CONFIGS))
@pytest.mark.parametrize("n_dead", [0, 5, 100])
@pytest.mark.parametrize(
    ("apply_b_dec_to_input", "rescale_acts_by_decoder_norm"), [(True, True), (False, True), (True, False)]
)
def test_loss_and_gradients_match_saelens_step(
    architecture: str, n_dead: int, apply_b_dec_to_input: bool, rescale_acts_by_decoder_norm: bool
):
    dense, sparse = _pair(
        architecture,
        apply_b_dec_to_input=apply_b_dec_to_input,
        rescale_acts_by_decoder_norm=rescale_acts_by_decoder_norm,
    )
    assert supports_sparse_step(sparse.cfg) and type(sparse) is not type(dense)
    assert isinstance(sparse, type(dense))
    x = torch.randn(BATCH, D_IN) * 3
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[torch.randperm(D_SAE)[:n_dead]] = True
    want, want_grads = _step(dense, x, dead)
    got, got_grads = _step(sparse, x, dead)
    assert sparse.W_enc.data_ptr() != dense.W_enc.data_ptr()  # independent copies
    assert set(got.losses) == set(want.losses)
    for name, value in want.losses.items():
        torch.testing.assert_close(got.losses[name], value, rtol=1e-5, atol=1e-5, msg=name)
    assert (want.losses["auxiliary_reconstruction_loss"] > 0) == (n_dead > 0)
    torch.testing.assert_close(got.loss, want.loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.sae_out, want.sae_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.feature_acts, want.feature_acts, rtol=1e-5, atol=1e-6)
    assert set(got_grads) == set(want_grads)
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)
    if architecture != "topk":  # the threshold SAELens tracks for inference moved the same way
        assert float(sparse.topk_threshold) > 0
        torch.testing.assert_close(sparse.topk_threshold, dense.topk_threshold)
        assert set(got.metrics) == set(want.metrics)


def test_the_gathered_pre_activation_passes_torchs_gradient_check():
    torch.manual_seed(1)
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    W_enc = torch.randn(5, 12, dtype=torch.float64, requires_grad=True)
    b_enc = torch.randn(12, dtype=torch.float64, requires_grad=True)
    tokens = torch.tensor([0, 0, 1, 3, 3, 3, 5])  # token 2 and 4 choose nothing, token 3 three latents
    latents = torch.tensor([2, 7, 7, 0, 4, 11, 9])

    def gathered(x, W_enc, b_enc):
        values = (x @ W_enc + b_enc)[tokens, latents]
        return GatheredPreActivation.apply(x, W_enc, b_enc, tokens, latents, values.detach())

    assert torch.autograd.gradcheck(gathered, (x, W_enc, b_enc))


@pytest.mark.parametrize(
    ("architecture", "cfg"),
    [
        ("topk", {"normalize_activations": "expected_average_only_in"}),
        ("batchtopk", {"normalize_activations": "expected_average_only_in"}),
        ("matryoshka_batchtopk", {"use_matryoshka_aux_loss": True}),
    ],
)
def test_configs_the_sparse_step_cannot_compute_run_saelens_step_unchanged(architecture, cfg):
    assert not supports_sparse_step(
        TopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, use_sparse_activations=True)
    )
    dense, sparse = _pair(architecture, **cfg)
    assert not supports_sparse_step(sparse.cfg)
    x = torch.randn(BATCH, D_IN)
    dead = torch.arange(D_SAE) < 20
    want, want_grads = _step(dense, x, dead)
    got, got_grads = _step(sparse, x, dead)
    assert torch.equal(got.loss, want.loss)
    assert all(torch.equal(got_grads[name], grad) for name, grad in want_grads.items())


@pytest.mark.parametrize("architecture", list(CONFIGS))
def test_training_with_the_sparse_step_follows_the_dense_one(architecture):
    """Ten Adam steps from the same weights on the same batches stay together (float32 rounding only)."""
    dense, sparse = _pair(architecture)
    batches = [torch.randn(BATCH, D_IN) * 3 for _ in range(10)]
    for sae in (dense, sparse):
        optimizer = torch.optim.Adam(sae.parameters(), lr=1e-3)
        for x in batches:
            _step(sae, x, torch.arange(D_SAE) < 20)
            optimizer.step()
    for name, param in dense.named_parameters():
        torch.testing.assert_close(dict(sparse.named_parameters())[name], param, rtol=1e-3, atol=1e-4)


def test_a_runner_asked_for_the_sparse_step_trains_topk_with_it_and_saves_a_stock_sae(
    tmp_path, tiny_model, texts
):
    cfg = make_runner_config(
        "topk",
        masking=MaskingConfig(p=0.3, mask_token="<repo_name>"),
        sae=tiny_sae("topk"),
        sparse_sae_step=True,
        **tiny_runner_settings(tmp_path),
    )
    runner = MaskedLanguageModelSAETrainingRunner(cfg, override_model=tiny_model, override_dataset=texts)
    assert type(runner.sae) is SparseTopKTrainingSAE
    before = runner.sae.W_enc.detach().clone()
    runner.run()
    assert not torch.equal(runner.sae.W_enc.detach(), before)  # it trained
    sae = SAE.load_from_disk(str(tmp_path / "sae"))
    assert sae.cfg.architecture() == "topk"


def test_the_sparse_step_leaves_other_architectures_on_saelens_step_and_refuses_a_run_with_none(tmp_path):
    assert not supports_sparse_step(StandardTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE))
    standard = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE))
    assert with_sparse_step(standard) is standard
    with pytest.raises(SparseStepError, match="this run trains standard"):
        make_runner_config(
            "standard", sae=tiny_sae("standard"), sparse_sae_step=True, **tiny_runner_settings(tmp_path)
        )


def test_a_multi_sae_run_gives_the_sparse_step_to_the_saes_that_take_it(tmp_path, tiny_model, texts):
    settings = tiny_runner_settings(tmp_path)
    for key in ("model_name", "hook_name", "output_path", "checkpoint_path"):
        settings.pop(key)
    cfg = MaskedMultiSAETrainingRunnerConfig(
        saes={
            "topk": TopKTrainingSAEConfig(d_in=32, d_sae=64, k=4),
            "matryoshka": MatryoshkaBatchTopKTrainingSAEConfig(
                d_in=32, d_sae=64, k=4, matryoshka_widths=[16, 64]
            ),
            "standard": StandardTrainingSAEConfig(d_in=32, d_sae=64),
        },
        hook_names=TINY_HOOK,
        logger=LoggingConfig(log_to_wandb=False),
        output_path=str(tmp_path / "multi"),
        checkpoint_path=str(tmp_path / "checkpoints"),
        sparse_sae_step=True,
        **settings,
    )
    runner = MaskedMultiSAETrainingRunner(cfg, override_model=tiny_model, override_dataset=texts)
    assert type(runner.saes["topk"]) is SparseTopKTrainingSAE
    assert type(runner.saes["matryoshka"]) is SparseMatryoshkaBatchTopKTrainingSAE
    assert type(runner.saes["standard"]) is StandardTrainingSAE
    runner.run()
    assert SAE.load_from_disk(str(tmp_path / "multi" / "topk")).cfg.architecture() == "topk"
    assert SAE.load_from_disk(str(tmp_path / "multi" / "matryoshka")).cfg.architecture() == "jumprelu"


@pytest.mark.parametrize("threshold", [0.0, 1.0, 100.0])  # prefilter wide, near the k x batch-th value, empty
def test_batchtopk_chooses_the_batchs_top_pairs_also_when_one_token_holds_many(threshold):
    """Each way of choosing (among the pre-activations above the tracked threshold; each token's candidates, then
    the batch's top) gives the whole batch's top k x batch; a token with more active latents than its candidates
    sends the two-stage choice to the whole batch."""
    _, sparse = _pair("batchtopk")
    sparse.topk_threshold.fill_(threshold)
    torch.manual_seed(1)
    for heavy in (False, True):
        hidden_pre = torch.randn(BATCH, D_SAE)
        if heavy:
            hidden_pre[3] = 50 + torch.rand(D_SAE)  # one token above every other, on every latent
        tokens, latents = sparse.choose(hidden_pre)
        flat = hidden_pre.relu().flatten().topk(K * BATCH).indices
        assert set(zip(tokens.tolist(), latents.tolist(), strict=True)) == {
            (int(i) // D_SAE, int(i) % D_SAE) for i in flat
        }
        assert torch.equal(tokens, tokens.sort().values)
        if heavy:
            assert int((tokens == 3).sum()) == D_SAE
