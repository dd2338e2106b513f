"""A TopK training step that touches only the active latents: the same loss and gradients as SAELens's, cheaper.

SAELens's TopK step (`TrainingSAE.training_forward_pass`) decodes a dense `[batch, d_sae]` activation matrix
and backpropagates through dense products, although only k of d_sae latents are active per token: the decoder
product and both weight gradients cost as much as the encoder, which is the one product a step needs densely.
`SparseTopKTrainingSAE` keeps the dense encoder product (to choose the top k), then works on the chosen latents
only: the decoder sums k rows of `W_dec` per token (`embedding_bag`), and the encoder's gradient is added to the
k chosen columns of `W_enc` (`GatheredPreActivation`). AuxK, the auxiliary loss that trains dead latents, runs on
the dead latents' columns only. With no dead latents, and in exact arithmetic, loss and gradients equal
SAELens's (tests check it to float32 rounding); the SAE saved is SAELens's own TopK SAE.

The step applies where the dense one is plain: activations not normalized at run time, 2-D input (no
attention-head reshaping), dense activations (`use_sparse_activations` off); rescaling by decoder norm (SAELens's
TopK default) is computed as SAELens does. Elsewhere `supports_sparse_step` is False and
`SparseTopKTrainingSAE` runs SAELens's own step unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sae_lens.saes.sae import TrainingSAE, TrainingSAEConfig, TrainStepInput, TrainStepOutput
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
from torch.nn import functional

from sae_mask_plugin.errors import SaeMaskUserError


def supports_sparse_step(cfg: TopKTrainingSAEConfig) -> bool:
    """Whether the sparse step computes what SAELens's step computes for this config."""
    return (
        cfg.normalize_activations == "none"
        and not cfg.use_sparse_activations
        and cfg.reshape_activations == "none"
    )


class GatheredPreActivation(torch.autograd.Function):
    """`(x @ W_enc + b_enc)[row, latents[row]]`, its value given, its gradient added to the gathered columns only.

    Forward inputs: x [batch, d_in], W_enc [d_in, d_sae], b_enc [d_sae], latents [batch, m] (long), and the values
    already computed without gradient, [batch, m]. Backward: grad_x [batch, d_in], grad_W_enc [d_in, d_sae] (zero
    outside the gathered columns), grad_b_enc [d_sae]; cost O(batch * m * d_in) instead of O(batch * d_sae * d_in)
    (the dense gradient is allocated, not multiplied).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        W_enc: torch.Tensor,
        b_enc: torch.Tensor,
        latents: torch.Tensor,
        values: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, W_enc, latents)
        return values.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, W_enc, latents = ctx.saved_tensors
        grad_x = grad_W_enc = grad_b_enc = None
        if ctx.needs_input_grad[0]:
            grad_x = decode_chosen(latents, grad, W_enc.t().contiguous())
        if ctx.needs_input_grad[1]:
            # [d_sae, batch] sparse (one entry per chosen token-latent pair) @ x: the gathered columns' gradient
            tokens = torch.arange(x.shape[0], device=x.device).repeat_interleave(latents.shape[1])
            chosen = torch.sparse_coo_tensor(
                torch.stack([latents.reshape(-1), tokens]),
                grad.reshape(-1),
                (W_enc.shape[1], x.shape[0]),
                check_invariants=False,
            )
            grad_W_enc = torch.sparse.mm(chosen, x).t()
        if ctx.needs_input_grad[2]:
            grad_b_enc = torch.zeros(W_enc.shape[1], dtype=grad.dtype, device=grad.device)
            grad_b_enc.index_add_(0, latents.reshape(-1), grad.reshape(-1))
        return grad_x, grad_W_enc, grad_b_enc, None, None


def decode_chosen(latents: torch.Tensor, acts: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """`sum_j acts[i, j] * W_dec[latents[i, j]]` per token: [batch, m] latents and acts → [batch, d_in]."""
    return functional.embedding_bag(latents, W_dec, per_sample_weights=acts, mode="sum")


class SparseTopKTrainingSAE(TopKTrainingSAE):
    """SAELens's `TopKTrainingSAE` with the sparse training step (`supports_sparse_step` configs)."""

    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        """SAELens's TopK step, computed on the k chosen latents per token (module docstring). `hidden_pre` in
        the output is the dense pre-activation without gradient; `feature_acts` is dense, for firing counts."""
        if not supports_sparse_step(self.cfg) or step_input.sae_in.ndim != 2:
            return super().training_forward_pass(step_input)
        sae_in = self.process_sae_in(step_input.sae_in)
        # rescaling by decoder norm (SAELens's TopK default): pre-activations times ||W_dec row||, decoded rows
        # divided by it; gradients flow through the norms as in SAELens
        norms = self.W_dec.norm(dim=-1) if self.cfg.rescale_acts_by_decoder_norm else None
        with torch.no_grad():
            unscaled = sae_in @ self.W_enc + self.b_enc
            hidden_pre = unscaled if norms is None else unscaled * norms
            latents = hidden_pre.topk(self.cfg.k, dim=-1, sorted=False).indices
        acts = self._chosen_pre_activations(sae_in, unscaled, latents, norms).relu()
        sae_out = self._decode_chosen_scaled(latents, acts, norms) + self.b_dec
        mse_loss = self.mse_loss_fn(sae_out, step_input.sae_in).sum(dim=-1).mean()
        aux_loss = self._sparse_aux_loss(sae_in, step_input, sae_out, unscaled, hidden_pre, norms)
        feature_acts = torch.zeros_like(hidden_pre).scatter_(-1, latents, acts.detach())
        return TrainStepOutput(
            sae_in=step_input.sae_in,
            sae_out=sae_out,
            feature_acts=feature_acts,
            hidden_pre=hidden_pre,
            loss=mse_loss + aux_loss,
            losses={"mse_loss": mse_loss, "auxiliary_reconstruction_loss": aux_loss},
        )

    def _chosen_pre_activations(
        self, sae_in: torch.Tensor, unscaled: torch.Tensor, latents: torch.Tensor, norms: torch.Tensor | None
    ) -> torch.Tensor:
        """The pre-activations [batch, m] of the chosen latents [batch, m], with gradient, from the dense
        `unscaled` [batch, d_sae] computed without it (times the decoder norms when rescaling)."""
        pre = GatheredPreActivation.apply(
            sae_in, self.W_enc, self.b_enc, latents, unscaled.gather(1, latents)
        )
        return pre if norms is None else pre * norms[latents]

    def _decode_chosen_scaled(
        self, latents: torch.Tensor, acts: torch.Tensor, norms: torch.Tensor | None
    ) -> torch.Tensor:
        """SAELens's `act_times_W_dec` on the chosen latents: [batch, m] → [batch, d_in], without `b_dec`."""
        return decode_chosen(latents, acts if norms is None else acts / norms[latents], self.W_dec)

    def _sparse_aux_loss(
        self,
        sae_in: torch.Tensor,
        step_input: TrainStepInput,
        sae_out: torch.Tensor,
        unscaled: torch.Tensor,
        hidden_pre: torch.Tensor,
        norms: torch.Tensor | None,
    ) -> torch.Tensor:
        """SAELens's `calculate_topk_aux_loss` on the dead latents' columns: their top k_aux (d_in / 2)
        pre-activations per token reconstruct the live latents' residual. sae_in [batch, d_in] (after
        `process_sae_in`); unscaled and hidden_pre [batch, d_sae] without gradient."""
        dead_neuron_mask = step_input.dead_neuron_mask
        if dead_neuron_mask is None or (num_dead := int(dead_neuron_mask.sum())) == 0:
            return sae_out.new_tensor(0.0)
        half = step_input.sae_in.shape[-1] // 2
        dead = dead_neuron_mask.nonzero().squeeze(-1)
        with torch.no_grad():
            chosen_among_dead = hidden_pre[:, dead].topk(min(half, num_dead), dim=-1, sorted=False).indices
        latents = dead[chosen_among_dead]
        acts = self._chosen_pre_activations(sae_in, unscaled, latents, norms)
        residual = (step_input.sae_in - sae_out).detach()
        recons = self._decode_chosen_scaled(latents, acts, norms)
        scale = min(num_dead / half, 1.0)
        return self.cfg.aux_loss_coefficient * scale * (recons - residual).pow(2).sum(dim=-1).mean()


class SparseStepError(SaeMaskUserError, ValueError):
    """`sparse_sae_step` asked of a run where no SAE can take it."""


def takes_sparse_step(cfg: TrainingSAEConfig) -> bool:
    """Whether an SAE of this training config trains with the sparse step when a runner asks for it: TopK SAEs
    (not the BatchTopK family, whose selection is per batch) with a `supports_sparse_step` config."""
    return (
        isinstance(cfg, TopKTrainingSAEConfig) and cfg.architecture() == "topk" and supports_sparse_step(cfg)
    )


def check_sparse_step(sae_configs: Iterable[TrainingSAEConfig]) -> None:
    """Raise `SparseStepError` when none of `sae_configs` can take the sparse step (before any model load)."""
    configs = list(sae_configs)
    if not any(takes_sparse_step(cfg) for cfg in configs):
        architectures = ", ".join(sorted({cfg.architecture() for cfg in configs}))
        raise SparseStepError(
            f"sparse_sae_step applies to TopK SAEs without run-time activation normalization or sparse "
            f"activations; this run trains {architectures}: set sparse_sae_step to False"
        )


def with_sparse_step(sae: TrainingSAE[Any]) -> TrainingSAE[Any]:
    """`sae` as a `SparseTopKTrainingSAE` (same config and weights) where `takes_sparse_step`, else `sae`."""
    if isinstance(sae, SparseTopKTrainingSAE) or not takes_sparse_step(sae.cfg):
        return sae
    sparse = SparseTopKTrainingSAE(sae.cfg)  # type: ignore[arg-type]
    sparse.load_state_dict(sae.state_dict())
    return sparse.to(sae.W_enc.device)
