"""The probing configs' shared fields and checks, and the two means over possibly missing scores."""

from __future__ import annotations

from dataclasses import fields

import pytest

from sae_mask_plugin.evals.means import mean_if_complete, mean_of_present
from sae_mask_plugin.evals.ood_probing.eval_config import OodProbingEvalConfig
from sae_mask_plugin.evals.probing_config import ActivationProbingEvalConfig
from sae_mask_plugin.evals.sparse_probing.eval_config import SparseProbingEvalConfig

SHARED = (
    "model_name",
    "max_seq_len",
    "llm_batch_size",
    "llm_dtype",
    "random_seed",
    "num_train",
    "ks",
    "reg_type",
)


def test_the_probing_configs_share_their_fields_from_one_base():
    assert [f.name for f in fields(ActivationProbingEvalConfig)] == list(SHARED)
    for config_class in (SparseProbingEvalConfig, OodProbingEvalConfig):
        assert [f.name for f in fields(config_class)][: len(SHARED)] == list(SHARED)
        assert config_class().ks == [1, 2, 5, 16] and config_class().reg_type == "l1"


@pytest.mark.parametrize("config_class", [SparseProbingEvalConfig, OodProbingEvalConfig])
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reg_type", "l0", "reg_type must be 'l1' or 'l2'"),
        ("ks", [], "ks must be positive"),
        ("ks", [0, 2], "ks must be positive"),
        ("num_train", 1, "num_train must be at least 2"),
        ("llm_dtype", "float16", "llm_dtype must be one of"),
        ("max_seq_len", 0, "must be positive"),
    ],
)
def test_both_probing_configs_refuse_bad_shared_fields(config_class, field, value, message):
    with pytest.raises(ValueError, match=message):
        config_class(**{field: value})


def test_each_probing_config_keeps_its_own_checks():
    with pytest.raises(ValueError, match="num_test must be at least 2"):
        SparseProbingEvalConfig(num_test=1)
    with pytest.raises(ValueError, match="dataset_names"):
        SparseProbingEvalConfig(dataset_names=[])
    with pytest.raises(ValueError, match="headline_k 16 is not one of ks"):
        OodProbingEvalConfig(ks=[1, 2])
    with pytest.raises(ValueError, match="cv_folds must be at least 2"):
        OodProbingEvalConfig(cv_folds=1)


def test_a_missing_score_is_skipped_or_undefines_the_mean():
    assert mean_of_present([1.0, None, 3.0]) == 2.0
    assert mean_of_present([None, None]) is None and mean_of_present([]) is None
    assert mean_if_complete([1.0, 3.0]) == 2.0
    assert mean_if_complete([1.0, None, 3.0]) is None and mean_if_complete([]) is None
    assert mean_if_complete(value for value in (2.0, 4.0)) == 3.0  # any iterable
