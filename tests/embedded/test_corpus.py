"""The embedded corpus: decontaminated from every held-out eval text, deterministic, usable by SAELens."""

from __future__ import annotations

import random

import pytest

from sae_mask_plugin.embedded import corpus, probing_data


def test_decontaminator_catches_equal_overlapping_and_containing_texts():
    long_held_out = " ".join(f"w{i}" for i in range(20))
    decontaminator = corpus.Decontaminator(["Margaret of Clisson", long_held_out, "Plato"])
    assert decontaminator.is_contaminated("margaret   OF clisson")
    assert decontaminator.is_contaminated("A letter from Margaret of Clisson, 1400.")
    assert decontaminator.is_contaminated("prefix " + " ".join(f"w{i}" for i in range(5, 18)) + " suffix")
    assert not decontaminator.is_contaminated("prefix " + " ".join(f"w{i}" for i in range(5, 17)) + " suffix")
    assert not decontaminator.is_contaminated("Plato and Aristotle")  # one-word texts only match whole
    assert decontaminator.is_contaminated("plato")


@pytest.fixture(scope="module")
def embedded_corpus():
    return corpus.load_embedded_corpus(seed=0, show_progress=False)


def test_corpus_is_disjoint_from_held_out_datasets(embedded_corpus):
    assert not set(corpus.corpus_dataset_names()) & set(probing_data.HELD_OUT_DATASETS)
    held_out = {" ".join(corpus.words_of(text)) for text in probing_data.held_out_texts()}
    sample = random.Random(0).sample(embedded_corpus["text"], 20_000)
    assert not {" ".join(corpus.words_of(text)) for text in sample} & held_out
    # An independent containment check on a sample: no held-out text of >= 13 words appears inside.
    long_held_out = [text for text in held_out if len(text.split()) >= corpus.SPAN_WORDS][:2000]
    joined = [f" {' '.join(corpus.words_of(text))} " for text in sample[:3000]]
    assert not any(f" {needle} " in haystack for needle in long_held_out for haystack in joined)


def test_corpus_is_real_deduplicated_and_seeded(embedded_corpus):
    texts = embedded_corpus["text"]
    assert len(texts) > 200_000
    assert len(set(texts)) == len(texts)
    assert corpus.load_embedded_corpus(seed=0, show_progress=False)["text"][:50] == texts[:50]
    assert corpus.load_embedded_corpus(seed=1, show_progress=False)["text"][:50] != texts[:50]


def test_calibration_split_is_disjoint_from_training_corpus_and_held_out_text(embedded_corpus):
    calibration = corpus.load_calibration_texts(show_progress=False)
    assert 1_000 < len(calibration) < 5_000
    assert all(corpus.is_calibration_text(text) for text in calibration)
    assert not set(calibration) & set(embedded_corpus["text"])
    held_out = {" ".join(corpus.words_of(text)) for text in probing_data.held_out_texts()}
    assert not {" ".join(corpus.words_of(text)) for text in calibration} & held_out


@pytest.mark.slow
def test_corpus_feeds_saelens_activations_store_with_bos_per_document(embedded_model, embedded_corpus):
    from sae_lens import LanguageModelSAERunnerConfig
    from sae_lens.saes.standard_sae import StandardTrainingSAEConfig
    from sae_lens.training.activations_store import ActivationsStore

    cfg = LanguageModelSAERunnerConfig(
        sae=StandardTrainingSAEConfig(d_in=576, d_sae=64),
        model_name="SmolLM2-135M-Instruct",
        hook_name="blocks.3.hook_resid_post",
        dataset_path="embedded",
        is_dataset_tokenized=False,
        context_size=64,
        store_batch_size_prompts=4,
        n_batches_in_buffer=2,
        training_tokens=1024,
        train_batch_size_tokens=128,
        device="cpu",
        logger=__import__("sae_lens").LoggingConfig(log_to_wandb=False),
    )
    store = ActivationsStore.from_config(embedded_model, cfg, override_dataset=embedded_corpus)
    tokens = store.get_batch_tokens()
    assert tokens.shape == (4, 64)
    assert (tokens[:, 0] == 1).all()
    assert (tokens == 1).sum() > tokens.shape[0]  # short texts are packed, BOS-separated
    activations = store.get_activations(tokens)
    assert activations.shape[0] == 4 and activations.shape[-1] == 576
