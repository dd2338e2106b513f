"""A training step for the TopK family that touches only the active latents: SAELens's loss and gradients, cheaper.

SAELens's TopK-family steps (`TrainingSAE.training_forward_pass`) decode a dense `[batch, d_sae]` activation
matrix and backpropagate through dense products, although only about k of d_sae latents are active per token:
the decoder product and both weight gradients cost as much as the encoder, which is the one product a step needs
densely. The sparse step keeps the dense encoder product (to choose the active latents), then works on the
chosen (token, latent) pairs only: the decoder sums the chosen rows of `W_dec` per token (`embedding_bag`), and
the encoder's gradient goes to the chosen columns of `W_enc` (`GatheredPreActivation`, sparse products). AuxK,
the auxiliary loss that trains dead latents, runs on the dead latents' columns only; Matryoshka's inner losses
decode the pairs below each level's width. In exact arithmetic loss and gradients equal SAELens's (tests check
them to float32 rounding); the SAE saved is SAELens's own.

Covered: TopK (k per token), BatchTopK (k x batch over the batch) and Matryoshka BatchTopK (without
`use_matryoshka_aux_loss`), with activations not normalized at run time, 2-D input and dense activations;
rescaling by decoder norm (SAELens's default) is computed as SAELens does. Elsewhere `supports_sparse_step` is
False and SAELens's step runs unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from sae_lens import (
    BatchTopKTrainingSAE,
    MatryoshkaBatchTopKTrainingSAE,
    MatryoshkaBatchTopKTrainingSAEConfig,
)
from sae_lens.saes.sae import TrainingSAE, TrainingSAEConfig, TrainStepInput, TrainStepOutput
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
from torch.nn import functional

from sae_mask_plugin.errors import SaeMaskUserError

SPARSE_STEP_ARCHITECTURES = ("topk", "batchtopk", "matryoshka_batchtopk")
CANDIDATES_PER_K = 4
"""BatchTopK's selection looks at each token's top 4 x k latents before choosing over the batch (exact unless a
token fills them all, when the whole batch is searched)."""
THRESHOLD_PREFILTER = 0.9
"""BatchTopK's selection first keeps the pre-activations above 0.9 x the threshold SAELens tracks (a running
estimate of the smallest chosen activation); when at least k x batch pass, the batch's top k x batch lie among
them (exact), else the per-token candidates are searched."""


def supports_sparse_step(cfg: TrainingSAEConfig) -> bool:
    """Whether the sparse step computes what SAELens's step computes for this training config."""
    return (
        isinstance(cfg, TopKTrainingSAEConfig)
        and cfg.architecture() in SPARSE_STEP_ARCHITECTURES
        and cfg.normalize_activations == "none"
        and not cfg.use_sparse_activations
        and cfg.reshape_activations == "none"
        and not getattr(cfg, "use_matryoshka_aux_loss", False)
    )


class GatheredPreActivation(torch.autograd.Function):
    """`(x @ W_enc + b_enc)[tokens[i], latents[i]]` for chosen pairs i, the value given, the gradient added to the
    chosen pairs only.

    Forward inputs: x [batch, d_in], W_enc [d_in, d_sae], b_enc [d_sae], tokens (sorted) and latents [n] (long),
    and the n values already computed without gradient. Backward: grad_x [batch, d_in], grad_W_enc [d_in, d_sae] (zero
    outside the chosen columns), grad_b_enc [d_sae], through sparse products: O(n * d_in) instead of
    O(batch * d_sae * d_in) (the dense gradient is allocated, not multiplied).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        W_enc: torch.Tensor,
        b_enc: torch.Tensor,
        tokens: torch.Tensor,
        latents: torch.Tensor,
        values: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, W_enc, tokens, latents)
        return values.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, W_enc, tokens, latents = ctx.saved_tensors
        grad_x = grad_W_enc = grad_b_enc = None
        if ctx.needs_input_grad[0]:
            grad_x = decode_pairs(tokens, latents, grad, W_enc.t().contiguous(), x.shape[0])
        if ctx.needs_input_grad[1]:
            # [d_sae, batch] sparse @ x: each chosen column's gradient
            chosen_t = _sparse(latents, tokens, grad, (W_enc.shape[1], x.shape[0]))
            grad_W_enc = torch.sparse.mm(chosen_t, x).t()
        if ctx.needs_input_grad[2]:
            grad_b_enc = torch.zeros(W_enc.shape[1], dtype=grad.dtype, device=grad.device)
            grad_b_enc.index_add_(0, latents, grad)
        return grad_x, grad_W_enc, grad_b_enc, None, None, None


def _sparse(
    rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """A COO matrix of `size` with `values` at (rows, columns)."""
    return torch.sparse_coo_tensor(torch.stack([rows, columns]), values, size, check_invariants=False)


def row_pairs(columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(tokens, latents)` pairs sorted by token ([batch * m] each) of `columns` [batch, m], the latents chosen per
    token."""
    tokens = torch.arange(columns.shape[0], device=columns.device).repeat_interleave(columns.shape[1])
    return tokens, columns.reshape(-1)


def decode_pairs(
    tokens: torch.Tensor, latents: torch.Tensor, weights: torch.Tensor, W_dec: torch.Tensor, batch: int
) -> torch.Tensor:
    """`sum_i weights[i] * W_dec[latents[i]]` per token: pairs sorted by token ([n] each) → [batch, d_in] (zero rows
    for tokens without a pair)."""
    counts = torch.bincount(tokens, minlength=batch)
    offsets = torch.cumsum(counts, 0) - counts
    return functional.embedding_bag(latents, W_dec, offsets, mode="sum", per_sample_weights=weights)


class _SparseStep:
    """The sparse step, mixed into SAELens's TopK-family training SAEs (see the module docstring)."""

    cfg: TopKTrainingSAEConfig
    W_enc: torch.nn.Parameter
    b_enc: torch.nn.Parameter
    W_dec: torch.nn.Parameter
    b_dec: torch.nn.Parameter

    def choose(self, hidden_pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The active (token, latent) pairs of a batch, sorted by token: the top k per token."""
        return row_pairs(hidden_pre.topk(int(self.cfg.k), dim=-1, sorted=False).indices)

    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        """SAELens's step on the chosen pairs. `hidden_pre` in the output is the dense pre-activation without
        gradient; `feature_acts` is dense, for firing counts and logging."""
        if not supports_sparse_step(self.cfg) or step_input.sae_in.ndim != 2:
            return super().training_forward_pass(step_input)  # type: ignore[misc]
        sae_in = self.process_sae_in(step_input.sae_in)  # type: ignore[attr-defined]
        batch = sae_in.shape[0]
        # rescaling by decoder norm: pre-activations times ||W_dec row||, decoded rows divided by it; gradients
        # flow through the norms as in SAELens
        norms = self.W_dec.norm(dim=-1) if self.cfg.rescale_acts_by_decoder_norm else None
        with torch.no_grad():
            unscaled = sae_in @ self.W_enc + self.b_enc
            hidden_pre = unscaled if norms is None else unscaled * norms
            tokens, latents = self.choose(hidden_pre)
        acts = self._chosen_pre_activations(sae_in, unscaled, tokens, latents, norms).relu()
        weights = self._decoder_weights(acts, latents, norms)
        sae_out = decode_pairs(tokens, latents, weights, self.W_dec, batch) + self.b_dec
        mse_loss = self.mse_loss_fn(sae_out, step_input.sae_in).sum(dim=-1).mean()  # type: ignore[attr-defined]
        aux_loss = self._sparse_aux_loss(sae_in, step_input, sae_out, unscaled, hidden_pre, norms)
        losses = {"mse_loss": mse_loss, "auxiliary_reconstruction_loss": aux_loss}
        loss = mse_loss + aux_loss
        for width, inner_loss in self.inner_losses(step_input.sae_in, tokens, latents, weights):
            losses[f"inner_mse_loss_{width}"] = inner_loss
            loss = loss + inner_loss
        feature_acts = torch.zeros_like(hidden_pre).index_put_((tokens, latents), acts.detach())
        output = TrainStepOutput(
            sae_in=step_input.sae_in,
            sae_out=sae_out,
            feature_acts=feature_acts,
            hidden_pre=hidden_pre,
            loss=loss,
            losses=losses,
        )
        self.after_sparse_step(output)
        return output

    def after_sparse_step(self, output: TrainStepOutput) -> None:
        """What SAELens's step does after its loss (nothing for TopK)."""

    @staticmethod
    def _decoder_weights(
        acts: torch.Tensor, latents: torch.Tensor, norms: torch.Tensor | None
    ) -> torch.Tensor:
        """The weights [n] that multiply the chosen `W_dec` rows: the activations, divided by the decoder norms
        when activations were rescaled by them."""
        return acts if norms is None else acts / norms[latents]

    def inner_losses(
        self, target: torch.Tensor, tokens: torch.Tensor, latents: torch.Tensor, weights: torch.Tensor
    ) -> list[tuple[int, torch.Tensor]]:
        """Matryoshka's inner reconstruction losses by level width (none for other architectures)."""
        return []

    def _chosen_pre_activations(
        self,
        sae_in: torch.Tensor,
        unscaled: torch.Tensor,
        tokens: torch.Tensor,
        latents: torch.Tensor,
        norms: torch.Tensor | None,
    ) -> torch.Tensor:
        """The pre-activations [n] of the chosen pairs, with gradient, from the dense `unscaled` [batch, d_sae]
        computed without it (times the decoder norms when rescaling)."""
        values = unscaled[tokens, latents]
        pre = GatheredPreActivation.apply(sae_in, self.W_enc, self.b_enc, tokens, latents, values)
        return pre if norms is None else pre * norms[latents]

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
            among_dead = hidden_pre[:, dead].topk(min(half, num_dead), dim=-1, sorted=False).indices
        tokens, latents = row_pairs(dead[among_dead])
        acts = self._chosen_pre_activations(sae_in, unscaled, tokens, latents, norms)
        weights = self._decoder_weights(acts, latents, norms)
        recons = decode_pairs(tokens, latents, weights, self.W_dec, sae_in.shape[0])
        residual = (step_input.sae_in - sae_out).detach()
        scale = min(num_dead / half, 1.0)
        return self.cfg.aux_loss_coefficient * scale * (recons - residual).pow(2).sum(dim=-1).mean()


class SparseTopKTrainingSAE(_SparseStep, TopKTrainingSAE):
    """SAELens's `TopKTrainingSAE` with the sparse step."""


class SparseBatchTopKTrainingSAE(_SparseStep, BatchTopKTrainingSAE):
    """SAELens's `BatchTopKTrainingSAE` with the sparse step: k x batch pairs chosen over the whole batch, and the
    threshold SAELens tracks for inference updated from them."""

    def choose(self, hidden_pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The top k x batch ReLU'd pre-activations of the whole batch, sorted by token: among those above
        `THRESHOLD_PREFILTER` x the tracked threshold when k x batch of them pass it, else in two stages, each
        token's top `CANDIDATES_PER_K` x k first and the batch's top k x batch among those, which is the same set
        unless a token fills all its candidates (then the whole batch is searched, as SAELens does)."""
        acts = hidden_pre.relu()
        batch, width = acts.shape
        total = int(self.cfg.k * batch)
        flat_acts = acts.flatten()
        above = (flat_acts > THRESHOLD_PREFILTER * float(self.topk_threshold)).nonzero().squeeze(-1)
        if len(above) >= total:
            flat = above[flat_acts[above].topk(total, sorted=False).indices].sort().values
            return flat // width, flat % width
        per_token = min(width, CANDIDATES_PER_K * math.ceil(self.cfg.k))
        candidates = acts.topk(per_token, dim=-1, sorted=False)
        chosen = candidates.values.flatten().topk(total).indices
        tokens = torch.div(chosen, per_token, rounding_mode="floor")
        if per_token < width and int(torch.bincount(tokens, minlength=batch).max()) >= per_token:
            flat = flat_acts.topk(total).indices.sort().values
            return flat // width, flat % width
        order = tokens.argsort()
        return tokens[order], candidates.indices.flatten()[chosen][order]

    def after_sparse_step(self, output: TrainStepOutput) -> None:
        """SAELens's threshold update from the chosen activations (as `BatchTopKTrainingSAE` does after its step)."""
        self.update_topk_threshold(output.feature_acts)
        output.metrics["topk_threshold"] = self.topk_threshold


class SparseMatryoshkaBatchTopKTrainingSAE(SparseBatchTopKTrainingSAE, MatryoshkaBatchTopKTrainingSAE):
    """SAELens's `MatryoshkaBatchTopKTrainingSAE` with the sparse step: each inner level decodes the chosen pairs
    below its width."""

    cfg: MatryoshkaBatchTopKTrainingSAEConfig  # type: ignore[assignment]

    def inner_losses(
        self, target: torch.Tensor, tokens: torch.Tensor, latents: torch.Tensor, weights: torch.Tensor
    ) -> list[tuple[int, torch.Tensor]]:
        losses = []
        for width in self.cfg.matryoshka_widths[:-1]:  # the outer level is the SAE's own loss
            inside = latents < width
            recon = decode_pairs(
                tokens[inside], latents[inside], weights[inside], self.W_dec, target.shape[0]
            )
            losses.append((width, self.mse_loss_fn(recon + self.b_dec, target).sum(dim=-1).mean()))
        return losses


SPARSE_STEP_CLASSES: dict[type[TrainingSAE[Any]], type[TrainingSAE[Any]]] = {
    TopKTrainingSAE: SparseTopKTrainingSAE,
    BatchTopKTrainingSAE: SparseBatchTopKTrainingSAE,
    MatryoshkaBatchTopKTrainingSAE: SparseMatryoshkaBatchTopKTrainingSAE,
}
"""SAELens's training class → the same class with the sparse step."""


class SparseStepError(SaeMaskUserError, ValueError):
    """`sparse_sae_step` asked of a run where no SAE can take it."""


def check_sparse_step(sae_configs: Iterable[TrainingSAEConfig]) -> None:
    """Raise `SparseStepError` when none of `sae_configs` can take the sparse step (before any model load)."""
    configs = list(sae_configs)
    if not any(supports_sparse_step(cfg) for cfg in configs):
        architectures = ", ".join(sorted({cfg.architecture() for cfg in configs}))
        raise SparseStepError(
            f"sparse_sae_step applies to {', '.join(SPARSE_STEP_ARCHITECTURES)} SAEs without run-time activation "
            f"normalization, sparse activations or Matryoshka's own aux loss; this run trains {architectures}: set "
            "sparse_sae_step to False"
        )


def with_sparse_step(sae: TrainingSAE[Any]) -> TrainingSAE[Any]:
    """`sae` with the sparse step (same config, weights and buffers) where `supports_sparse_step`, else `sae`."""
    sparse_class = SPARSE_STEP_CLASSES.get(type(sae))
    if sparse_class is None or not supports_sparse_step(sae.cfg):
        return sae
    sparse = sparse_class(sae.cfg)  # type: ignore[call-arg]
    sparse.load_state_dict(sae.state_dict())
    return sparse.to(sae.W_enc.device)
