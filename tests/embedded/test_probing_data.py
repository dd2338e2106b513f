"""sae-probes data read offline, with explicit label maps."""

from __future__ import annotations

import pytest

from sae_mask_plugin.embedded import probing_data


@pytest.mark.parametrize("task", probing_data.OOD_TASKS)
def test_ood_tasks_are_distinct_texts_with_both_labels(task):
    in_distribution, ood = probing_data.load_ood_task(task)
    for split in (in_distribution, ood):
        assert set(split["target"]) == {0, 1}
        assert split["prompt"].map(len).min() > 0
        assert split["prompt"].is_unique
    assert 0.4 <= ood["target"].mean() <= 0.6
    assert not set(ood["prompt"]) & set(in_distribution["prompt"])
    assert task in probing_data.OOD_SHIFTS


def test_deduplication_keeps_first_copies_and_drops_texts_with_both_labels():
    import pandas as pd

    frame = pd.DataFrame({"prompt": ["a", "b", "a", "c", "c", "d"], "target": [1, 0, 1, 0, 1, 1]})
    deduplicated = probing_data.deduplicate_texts(frame)
    assert deduplicated.to_dict("list") == {"prompt": ["a", "b", "d"], "target": [1, 0, 1]}
    raw = probing_data.load_probing_dataset("6_hist_fig_isamerican")
    assert len(raw) == 5000 and len(probing_data.load_ood_task("6_hist_fig_isamerican")[0]) == 3240


def test_qnli_ood_set_is_flagged_invalid_for_the_reason_stated():
    reason = probing_data.INVALID_OOD_TASKS["90_glue_qnli"]
    in_distribution = probing_data.load_probing_dataset("90_glue_qnli")
    raw_ood = probing_data._read_ood_set("90_glue_qnli")
    assert in_distribution["prompt"].str.contains(" | ", regex=False).all()  # question | sentence
    assert not raw_ood["prompt"].str.contains(" | ", regex=False).any()  # the question is gone
    both_labels = (raw_ood.groupby("prompt")["target"].nunique() > 1).sum()
    assert (len(raw_ood), raw_ood["prompt"].nunique(), both_labels) == (300, 167, 22)
    assert "167 distinct texts in 300 rows, 22 texts carrying both labels" in reason
    assert set(probing_data.INVALID_OOD_TASKS) <= set(probing_data.OOD_TASKS)


def test_cross_source_task_reads_held_out_datasets_only():
    for source, target in probing_data.CROSS_SOURCE_OOD_TASKS.values():
        assert {source, target} <= set(probing_data.HELD_OUT_DATASETS)
    in_distribution, ood = probing_data.load_ood_task("sentiment_movie_to_amazon")
    assert len(ood) == probing_data.CROSS_SOURCE_OOD_SIZE and ood["target"].mean() == 0.5
    assert ood["prompt"].str.startswith("Title: ").all()
    assert set(in_distribution["prompt"]) <= set(
        probing_data.load_probing_dataset("113_movie_sent")["prompt"]
    )


def test_qnli_ood_labels_are_mapped_not_alphabetised():
    raw = probing_data._read_ood_set("90_glue_qnli")
    _, ood = probing_data.load_ood_task("90_glue_qnli")
    raw_label = dict(zip(raw["prompt"], raw["target"].astype(str), strict=True))  # one label per text kept
    mapped = {raw_label[text]: label for text, label in zip(ood["prompt"], ood["target"], strict=True)}
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
