"""`MaskingConfig` validation: one clear error per bad setting, raised on construction."""

from __future__ import annotations

import pytest

from sae_mask_plugin.masking import MaskingConfig, MaskingConfigError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 1.0}, r"masking.p must be a probability in \[0, 1\)"),
        ({"p": -0.1}, r"masking.p must be a probability"),
        ({"p": True}, r"masking.p must be a probability"),
        ({"p_end": 1.5, "schedule": "anneal"}, r"masking.p_end must be a probability"),
        ({"strategy": "bert"}, r"masking.strategy must be one of token, random, unigram, span; got 'bert'"),
        ({"schedule": "cosine"}, r"masking.schedule must be one of constant, warmup, anneal"),
        ({"loss_positions": "some"}, r"masking.loss_positions must be one of all, unmasked, masked"),
        ({"span_mean_length": 0.5}, r"masking.span_mean_length must be >= 1"),
        ({"strategy": "span", "p": 0.9, "span_mean_length": 2.0}, r"too short for p = 0.9"),
        ({"mask_token": -1}, r"masking.mask_token id must be >= 0"),
        ({"mask_token": ""}, r"must not be an empty string"),
        ({"mask_token": 1.5}, r"masking.mask_token must be a token id, a string or None"),
        ({"schedule_tokens": 0}, r"masking.schedule_tokens must be >= 1"),
        ({"protect_prefix": -2}, r"masking.protect_prefix must be >= 0"),
        ({"protected_token_ids": [1, -3]}, r"protected_token_ids must be non-negative"),
        ({"max_norm_ratio": 0.5}, r"masking.max_norm_ratio must be > 1 or None"),
        ({"p": 0.0, "loss_positions": "masked"}, r"needs p > 0"),
    ],
)
def test_bad_settings_raise_one_clear_error(kwargs, message):
    with pytest.raises(MaskingConfigError, match=message):
        MaskingConfig(**kwargs)


def test_round_trip_and_baseline():
    cfg = MaskingConfig(
        p=0.2, strategy="span", mask_token="<repo_name>", schedule="anneal", p_end=0.4, seed=3
    )
    assert MaskingConfig.from_dict({**cfg.to_dict(), "mask_token_string": "x"}) == cfg
    assert cfg.max_p == 0.4 and cfg.is_active
    assert not MaskingConfig(p=0.0).is_active
    assert MaskingConfig(p=0.0, schedule="anneal", p_end=0.3).is_active
    assert not MaskingConfig(p=0.0, schedule="warmup").is_active
