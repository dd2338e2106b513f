"""`MaskingConfig`: the settings of masked regularization, validated on construction (no SAELens import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

import simple_parsing

from sae_mask_plugin.errors import SaeMaskUserError

MaskStrategy = Literal["token", "random", "unigram", "span"]
PSchedule = Literal["constant", "warmup", "anneal"]
LossPositions = Literal["all", "unmasked", "masked"]

MASK_STRATEGIES: tuple[str, ...] = get_args(MaskStrategy)
P_SCHEDULES: tuple[str, ...] = get_args(PSchedule)
LOSS_POSITIONS: tuple[str, ...] = get_args(LossPositions)

DEFAULT_MAX_NORM_RATIO = 2.0
"""First-batch threshold on (median hook norm at masked positions) / (median at clean positions).

At a norm ratio r a masked position carries about r² times the squared error of a clean one, so at p = 0.3 and
r = 2 the masked positions already hold more than half of the SAE's loss. On SmolLM2, `<|endoftext|>` placed
mid-text sits at 25–29× at layers 12–15 and kills the SAE; benign tokens sit at 0.9–1.1×.
"""


class MaskingConfigError(SaeMaskUserError, ValueError):
    """A masking setting that cannot work; raised before any model is loaded."""


def parse_mask_token(value: str) -> int | str | None:
    """Command-line parser of `mask_token`: an integer is a token id, `none` is "choose by measurement"."""
    if value.strip().lower() in {"", "none", "auto"}:
        return None
    try:
        return int(value)
    except ValueError:
        return value


@dataclass
class MaskingConfig:
    """How tokens of the LLM input are masked while an SAE trains on the LLM's activations.

    Each unprotected token is replaced with probability `p` (at step t, `p` follows `schedule`) before the LLM
    forward pass; the SAE trains on the resulting activations at the positions chosen by `loss_positions`.

    Args:
        p (float): Masking probability per token, in [0, 1). 0 trains a baseline SAE.
        strategy (str): `token` replaces with one fixed mask token (the paper's setting); `random` with a
            uniformly drawn unprotected vocabulary token; `unigram` with a token drawn from the unigram
            distribution of the training text seen so far; `span` masks contiguous spans of mean length
            `span_mean_length` with the mask token, at the same expected rate `p`.
        mask_token (int | str | None): Mask token for `token`/`span`: a token id or a string that is a single
            token of the tokenizer. None chooses it by measurement: the candidate whose hook-layer norm at masked
            positions is closest to that of clean text (see `sae-mask mask-tokens`).
        span_mean_length (float): Mean span length for `span` (>= 1; spans are geometric).
        schedule (str): `constant` keeps p; `warmup` raises it linearly from 0 to p; `anneal` moves it linearly
            from p to `p_end`; both over `schedule_tokens` training tokens.
        p_end (float): Final probability of the `anneal` schedule, in [0, 1).
        schedule_tokens (int | None): Training tokens over which `warmup`/`anneal` run; None = the whole run.
        protected_token_ids (list[int]): Token ids never masked, in addition to the tokenizer's special tokens.
        protect_special_tokens (bool): Never mask the tokenizer's structural special tokens (BOS, EOS, PAD, SEP:
            attention sinks with huge norms).
        protect_prefix (int): Never mask the first `protect_prefix` positions of each context.
        loss_positions (str): Positions the SAE trains on: `all` (the paper), `unmasked`, or `masked`.
        seed (int | None): Seed of the masking generator; None uses the runner's `seed`.
        max_norm_ratio (float | None): Stop on the first batch when the median hook norm at masked positions
            exceeds this multiple of the median at clean positions; None disables the check.
    """

    p: float = 0.3
    strategy: MaskStrategy = "token"
    mask_token: int | str | None = simple_parsing.helpers.field(default=None, type=parse_mask_token)
    span_mean_length: float = 3.0
    schedule: PSchedule = "constant"
    p_end: float = 0.0
    schedule_tokens: int | None = None
    protected_token_ids: list[int] = field(default_factory=list)
    protect_special_tokens: bool = True
    protect_prefix: int = 0
    loss_positions: LossPositions = "all"
    seed: int | None = None
    max_norm_ratio: float | None = DEFAULT_MAX_NORM_RATIO

    def __post_init__(self) -> None:
        for name in ("p", "p_end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise MaskingConfigError(f"masking.{name} must be a probability in [0, 1), got {value!r}")
        _check_choice("strategy", self.strategy, MASK_STRATEGIES)
        _check_choice("schedule", self.schedule, P_SCHEDULES)
        _check_choice("loss_positions", self.loss_positions, LOSS_POSITIONS)
        if isinstance(self.mask_token, bool) or not isinstance(self.mask_token, (int, str, type(None))):
            raise MaskingConfigError(
                f"masking.mask_token must be a token id, a string or None, got {self.mask_token!r}"
            )
        if isinstance(self.mask_token, int) and self.mask_token < 0:
            raise MaskingConfigError(f"masking.mask_token id must be >= 0, got {self.mask_token}")
        if isinstance(self.mask_token, str) and not self.mask_token:
            raise MaskingConfigError("masking.mask_token must not be an empty string")
        if not self.span_mean_length >= 1.0:
            raise MaskingConfigError(f"masking.span_mean_length must be >= 1, got {self.span_mean_length}")
        if self.strategy == "span":
            # An alternating renewal process with masked runs of mean L and rate p needs unmasked runs of mean
            # L (1 - p) / p >= 1, i.e. L >= p / (1 - p).
            p_max = self.max_p
            if self.span_mean_length < p_max / (1.0 - p_max):
                raise MaskingConfigError(
                    f"masking.span_mean_length {self.span_mean_length} is too short for p = {p_max}: spans of mean "
                    f"length L reach rate p only when L >= p / (1 - p) = {p_max / (1.0 - p_max):.3g}"
                )
        if self.schedule_tokens is not None and self.schedule_tokens < 1:
            raise MaskingConfigError(
                f"masking.schedule_tokens must be >= 1 or None, got {self.schedule_tokens}"
            )
        if self.protect_prefix < 0:
            raise MaskingConfigError(f"masking.protect_prefix must be >= 0, got {self.protect_prefix}")
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.protected_token_ids):
            raise MaskingConfigError(
                f"masking.protected_token_ids must be non-negative token ids, got {self.protected_token_ids!r}"
            )
        if self.max_norm_ratio is not None and not self.max_norm_ratio > 1.0:
            raise MaskingConfigError(f"masking.max_norm_ratio must be > 1 or None, got {self.max_norm_ratio}")
        if self.loss_positions == "masked" and not self.is_active:
            raise MaskingConfigError(
                "masking.loss_positions='masked' trains on masked positions only and needs p > 0"
            )

    @property
    def max_p(self) -> float:
        """The largest masking probability the schedule reaches."""
        return max(self.p, self.p_end) if self.schedule == "anneal" else self.p

    @property
    def is_active(self) -> bool:
        """False for a baseline: no token is ever masked."""
        return self.max_p > 0.0

    @property
    def uses_mask_token(self) -> bool:
        """Whether the strategy writes a fixed mask token (as opposed to drawn vocabulary tokens)."""
        return self.strategy in ("token", "span")

    def p_at(self, tokens_seen: int, total_tokens: int) -> float:
        """Masking probability after `tokens_seen` training tokens of a run of `total_tokens`."""
        if self.schedule == "constant":
            return self.p
        horizon = self.schedule_tokens or total_tokens
        progress = min(1.0, max(0, tokens_seen) / max(1, horizon))
        if self.schedule == "warmup":
            return self.p * progress
        return self.p + (self.p_end - self.p) * progress

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict that `from_dict` reads back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaskingConfig:
        """Build from `to_dict` output, ignoring keys that are not fields (e.g. `mask_token_string`)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MaskingConfigError(f"masking.{name} must be one of {', '.join(choices)}; got {value!r}")
