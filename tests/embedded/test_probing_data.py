"""sae-probes data read offline, with explicit label maps."""

from __future__ import annotations

import pytest

from sae_mask_plugin.embedded import probing_data


@pytest.mark.parametrize("task", probing_data.OOD_TASKS)
def test_ood_tasks_have_both_labels_in_both_splits(task):
    in_distribution, ood = probing_data.load_ood_task(task)
    for split in (in_distribution, ood):
        assert set(split["target"]) == {0, 1}
        assert split["prompt"].map(len).min() > 0
        assert 0.4 <= split["target"].mean() <= 0.6


def test_qnli_ood_labels_are_mapped_not_alphabetised():
    import pandas as pd

    raw = pd.read_csv(probing_data.OOD_DATA_DIR / "90_glue_qnli_OOD.csv.zst", compression="zstd")
    _, ood = probing_data.load_ood_task("90_glue_qnli")
    mapped = dict(zip(raw["target"].astype(str), ood["target"], strict=True))
    assert mapped == {"not_entailment": 1, "1": 0}


def test_bigram_labels_mean_the_bigram_is_present():
    in_distribution, _ = probing_data.load_ood_task("67_social-security")
    with_bigram = in_distribution[in_distribution["target"] == 1]["prompt"]
    assert with_bigram.str.lower().str.contains("social security").mean() > 0.9


def test_translation_table_is_not_an_ood_task():
    assert "66_living-room_translations" not in probing_data.OOD_TASKS
    with pytest.raises(probing_data.UnknownProbingDatasetError, match="unknown OOD task"):
        probing_data.load_ood_task("66_living-room_translations")


def test_held_out_datasets_exist_and_are_few():
    shipped = set(probing_data.list_probing_datasets())
    assert set(probing_data.HELD_OUT_DATASETS) <= shipped
    assert len(probing_data.HELD_OUT_DATASETS) <= 36
    with pytest.raises(probing_data.UnknownProbingDatasetError):
        probing_data.load_probing_dataset("999_not_shipped")
