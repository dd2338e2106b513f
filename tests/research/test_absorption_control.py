"""The absorption control: true absorption, SAEBench's measured absorption on hand-built SAEs, the masking-like
modifiers, bad input, and the runner end to end on a tiny grid (no LLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sae_bench.evals.absorption.k_sparse_probing import (
    KSparseProbe,
    build_metrics_df,
    eval_probe_and_sae_k_sparse_raw_scores,
    sae_k_sparse_metadata,
)
from sae_bench.evals.absorption.probing import LinearProbe
from sae_bench.evals.absorption.vocab import LETTERS
from sae_lens import StandardSAE, StandardSAEConfig

from research.absorption_control.__main__ import main
from research.absorption_control.config import (
    NUM_LETTERS,
    ControlConfig,
    ControlConfigError,
    FeatureHierarchy,
    MeasureConfig,
    ModifierConfig,
    SAESpec,
    WorldConfig,
)
from research.absorption_control.metrics import (
    k_sparse_metrics,
    k_sparse_scores,
    measured_absorption,
    train_letter_probe,
    true_absorption,
)
from research.absorption_control.run import draw_eval_data
from research.absorption_control.synthetic import (
    ContextDropout,
    CooccurrenceBreaking,
    Replacement,
    build_feature_dictionary,
    build_generator,
)

PARENT_CHILD = FeatureHierarchy({0: (1,)}, kind="intrinsic")
FEATURES_2D = torch.eye(2)  # parent e0, child e1
# samples 0-3: child (and parent) fire; sample 4: the parent alone
FEATURE_ACTS = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
# latent 0 = the parent latent, latent 1 = the child latent; the parent latent is silent on samples 0, 2, 3
# and the child latent fires on samples 0, 1, 3
LATENT_ACTS = torch.tensor([[0.0, 1.4], [1.0, 0.7], [0.0, 0.0], [0.0, 1.4], [1.0, 0.0]])


def test_true_absorption_two_latents_absorbing_child() -> None:
    decoder = torch.tensor([[1.0, 0.0], [1.0, 1.0]]) / torch.tensor(
        [[1.0], [2**0.5]]
    )  # child latent = e0 + e1
    truth = true_absorption(FEATURE_ACTS, LATENT_ACTS, decoder, FEATURES_2D, PARENT_CHILD, cos_threshold=0.3)
    # child fires on 4 samples; absorbed where the parent latent is silent and the child latent fires: 0 and 3
    assert truth.by_parent == {0: 0.5}
    assert truth.parent_silent == {0: 0.75}
    assert truth.dropped == {0: 0.25}  # sample 2: nothing fires, the letter is lost
    assert truth.child_firings == {0: 4}
    assert truth.mean == 0.5


def test_true_absorption_two_latents_clean_child() -> None:
    decoder = torch.eye(2)  # the child latent does not carry the parent direction
    truth = true_absorption(FEATURE_ACTS, LATENT_ACTS, decoder, FEATURES_2D, PARENT_CHILD, cos_threshold=0.3)
    assert truth.by_parent == {0: 0.0}
    assert truth.parent_silent == {0: 0.75}
    assert truth.dropped == {0: 0.75}  # samples 0, 2, 3: the parent latent silent, nothing carries the parent


def test_the_true_dropped_share_counts_a_letter_carried_by_any_firing_latent_as_kept() -> None:
    # a third latent along e0 + e1, matched to no feature, fires on sample 2 only: the letter is carried there
    decoder = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2**-0.5, 2**-0.5]])
    latents = torch.cat([LATENT_ACTS, torch.tensor([[0.0], [0.0], [1.0], [0.0], [0.0]])], dim=1)
    truth = true_absorption(FEATURE_ACTS, latents, decoder, FEATURES_2D, PARENT_CHILD, cos_threshold=0.3)
    assert truth.by_parent == {0: 0.0}  # not the child's latent: not absorption by the definition
    assert truth.dropped == {0: 0.5}  # samples 0 and 3 only
    high = true_absorption(FEATURE_ACTS, latents, decoder, FEATURES_2D, PARENT_CHILD, cos_threshold=0.8)
    assert high.dropped == {0: 0.75}  # at cosine 0.8 the third latent no longer carries the parent


def _random_letter_setup(
    seed: int = 0,
) -> tuple[StandardSAE, LinearProbe, dict[int, dict[int, KSparseProbe]]]:
    torch.manual_seed(seed)
    sae = StandardSAE(StandardSAEConfig(d_in=8, d_sae=12))
    probe = LinearProbe(8, NUM_LETTERS)
    k_probes = {
        k: {
            letter: KSparseProbe(torch.randn(k), torch.randn(()), torch.randperm(12)[:k])
            for letter in range(NUM_LETTERS)
        }
        for k in (1, 2)
    }
    return sae, probe, k_probes


def test_k_sparse_scores_and_metrics_match_saebench() -> None:
    sae, probe, k_probes = _random_letter_setup()
    acts = torch.randn(78, 8)
    letters = torch.arange(78) % NUM_LETTERS
    ours = k_sparse_scores(sae, probe, k_probes, acts, letters)
    theirs = eval_probe_and_sae_k_sparse_raw_scores(
        sae, probe, k_probes, [(str(i), int(letter)) for i, letter in enumerate(letters)], acts
    )
    for column in ours.columns:
        if column.startswith("score_"):
            assert ours[column].to_numpy() == pytest.approx(theirs[column].to_numpy(), abs=1e-5), column
        else:
            assert list(ours[column]) == list(theirs[column]), column
    metadata = sae_k_sparse_metadata(sae, probe, k_probes, sae_name="s", layer=0)
    our_metrics = k_sparse_metrics(ours, metadata, max_k_value=2).set_index("letter")
    their_metrics = build_metrics_df(theirs, metadata, max_k_value=2).set_index("letter")
    for name in ("probe", "sparse_sae_1", "sparse_sae_2"):
        for metric in ("f1", "precision", "recall"):
            column = f"{metric}_{name}"
            assert our_metrics[column].to_numpy() == pytest.approx(their_metrics[column].to_numpy()), column


HAND_WORLD = WorldConfig(
    words_per_letter=2,
    context_parents=1,
    context_children=2,
    background_features=0,
    letter_probability=0.2,
    word_probability=0.5,
    magnitude_std=0.0,
)
HAND_MEASURE = MeasureConfig(
    train_words_per_letter=40, test_words_per_letter=40, max_k_value=2, sparse_probe_batch_size=128
)


def _hand_built_sae(feature_vectors: torch.Tensor, absorbing: bool) -> StandardSAE:
    """One latent per true feature. Absorbing: a letter's encoder subtracts its words (silent whenever a word
    fires, magnitudes being exactly 1) and each word's decoder carries its letter; clean: encoder = decoder =
    the feature."""
    num_features, d = feature_vectors.shape
    sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=num_features))
    encoder = feature_vectors.clone()
    decoder = feature_vectors.clone()
    if absorbing:
        for letter, words in HAND_WORLD.intrinsic_hierarchy().children.items():
            for word in words:
                encoder[letter] -= feature_vectors[word]
                decoder[word] += feature_vectors[letter]
    with torch.no_grad():
        sae.W_enc.copy_(encoder.T)
        sae.W_dec.copy_(decoder)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


@pytest.fixture(scope="module")
def hand_world() -> tuple[torch.Tensor, dict[str, torch.Tensor], LinearProbe]:
    torch.manual_seed(0)
    feature_dict = build_feature_dictionary(HAND_WORLD, HAND_WORLD.num_features, seed=0)
    feature_dict.feature_vectors.data = torch.eye(HAND_WORLD.num_features)  # exactly orthonormal
    data = draw_eval_data(HAND_WORLD, feature_dict, 40, 40, seed=0)
    probe = train_letter_probe(
        data["train_acts"], data["train_letters"], data["test_acts"], data["test_letters"], 64
    )
    return feature_dict.feature_vectors.detach(), data, probe


@pytest.mark.parametrize("absorbing", [True, False])
def test_measured_absorption_on_hand_built_sae(hand_world, absorbing: bool) -> None:
    feature_vectors, data, probe = hand_world
    sae = _hand_built_sae(feature_vectors, absorbing)
    with torch.no_grad():
        latents = sae.encode(data["hidden"])
    truth = true_absorption(
        data["features"], latents, sae.W_dec.detach(), feature_vectors, HAND_WORLD.intrinsic_hierarchy(), 0.3
    )
    assert truth.mean == (1.0 if absorbing else 0.0)
    assert set(truth.dropped.values()) == {0.0}  # the letter is always carried: by its latent or the word's
    torch.manual_seed(0)
    measured = measured_absorption(
        sae,
        probe,
        data["train_acts"],
        data["train_letters"],
        data["test_acts"],
        data["test_letters"],
        HAND_MEASURE,
    )
    assert measured["num_letters_probe_f1_passing"] == NUM_LETTERS
    # the eval's dropped rate with SAEBench's absorber gate finds no dropped word either (at d 82 the d-scaled
    # gate, 0.53, is above the carrying latents' cosine with the probe)
    assert all(d["dropped_rate_k1"] == 0.0 for d in measured["letters"] if d["dropped_rate_k1"] is not None)
    assert [d["letter"] for d in measured["letters"]] == list(LETTERS)
    # with the letter latent as the only main latent, absorbed words are the letter's words (~75 % of them)
    if absorbing:
        assert measured["mean_absorption_fraction_k1"] > 0.5
        assert measured["mean_full_absorption_rate_k1"] > 0.5
    else:
        # latent i is feature i. Where SAEBench's k = 1 latent is the letter's own latent it fires on every
        # word: no full absorption. (For some letters SAEBench's L1 probe ranks a precise word latent first;
        # the probe weighs the words' directions too, as they predict the letter, so its fraction is partial.)
        own = [d for d in measured["letters"] if d["k1_latent"] == d["parent_feature"]]
        assert len(own) >= NUM_LETTERS // 2
        assert all(d["full_absorption_rate_k1"] == 0.0 for d in own)


def test_modifiers_act_as_documented() -> None:
    torch.manual_seed(0)
    world = WorldConfig()
    acts = build_generator(world).sample(4000)
    replaced = Replacement(0.5, world.mask_feature)(acts)
    masked = replaced[:, world.mask_feature] > 0
    assert 0.4 < masked.float().mean() < 0.6
    assert (replaced[masked].sum(dim=1) == 1).all()
    assert torch.equal(replaced[~masked], acts[~masked])

    contextual = world.contextual_features()
    dropped = ContextDropout(0.5, tuple(contextual))(acts)
    intrinsic = [f for f in range(world.num_features) if f not in contextual]
    assert torch.equal(dropped[:, intrinsic], acts[:, intrinsic])
    kept = (dropped[:, contextual] > 0).sum() / (acts[:, contextual] > 0).sum()
    assert 0.4 < kept < 0.6

    parent_of = world.intrinsic_hierarchy().parent_of
    broken = CooccurrenceBreaking(0.999999, tuple(parent_of), tuple(parent_of.values()))(acts)
    for child, parent in parent_of.items():
        assert not ((broken[:, child] > 0) & (broken[:, parent] > 0)).any()
    assert torch.equal(broken[:, list(parent_of)], acts[:, list(parent_of)])  # children untouched
    assert torch.equal(CooccurrenceBreaking(0.0, tuple(parent_of), tuple(parent_of.values()))(acts), acts)


def test_generator_respects_the_hierarchy() -> None:
    torch.manual_seed(0)
    world = WorldConfig()
    acts = build_generator(world).sample(4000)
    assert ((acts[:, :NUM_LETTERS] > 0).sum(dim=1) <= 1).all()  # a token is at most one letter
    for hierarchy in (world.intrinsic_hierarchy(), world.contextual_hierarchy()):
        for parent, children in hierarchy.children.items():
            child_fires = acts[:, list(children)] > 0
            assert (child_fires.sum(dim=1) <= 1).all()
            assert not (child_fires.any(dim=1) & (acts[:, parent] == 0)).any()
    assert (acts[:, world.mask_feature] == 0).all()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: FeatureHierarchy({0: (2,), 1: (2,)}, kind="intrinsic"),
            "not a tree: feature 2 has two parents",
        ),
        (
            lambda: FeatureHierarchy({0: (1,), 1: (0,)}, kind="intrinsic"),
            "not a tree: feature . is its own ancestor",
        ),
        (lambda: FeatureHierarchy({0: (0,)}, kind="intrinsic"), "not a tree"),
        (lambda: FeatureHierarchy({0: (1,)}, kind="lexical"), "kind must be"),
        (lambda: ModifierConfig("replacement", 1.0), r"must lie in \[0, 1\)"),
        (lambda: ModifierConfig("context_dropout", -0.1), r"must lie in \[0, 1\)"),
        (lambda: ModifierConfig("shuffle", 0.5), "modifier kind must be one of"),
        (lambda: ModifierConfig("replacement_matched_count", 1.0), r"must lie in \[0, 1\)"),
        (lambda: ControlConfig(mechanism_kinds=()), "mechanism_kinds must not be empty"),
        (lambda: ControlConfig(mechanism_kinds=("mask",)), "modifier kind must be one of"),
        (lambda: Replacement(1.0, 0), r"must lie in \[0, 1\)"),
        (lambda: CooccurrenceBreaking(1.5, (1,), (0,)), r"must lie in \[0, 1\)"),
        (lambda: SAESpec("relu", 8, 16, 2, 0), "architecture must be one of"),
        (lambda: SAESpec("topk", 8, 16, 16, 0), "must be below the width"),
        (lambda: ControlConfig(seeds=()), "seeds must not be empty"),
        (lambda: ControlConfig(mechanism_ps=(0.0, 1.0)), r"must lie in \[0, 1\)"),
        (lambda: WorldConfig(letter_probability=1.5), r"must lie in \[0, 1\]"),
    ],
)
def test_bad_input_is_refused_early(build, message: str) -> None:
    with pytest.raises(ControlConfigError, match=message):
        build()


def test_control_end_to_end_on_a_tiny_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "control"
    threads = torch.get_num_threads()
    assert main(["--tiny", "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads  # the process's torch settings are left as they were
    results = json.loads((out / "results.json").read_text())
    assert set(results["spearman_measured_vs_true"]) == {"rho", "p_value", "n"}
    assert results["random_sae_score"]["n"] + results["random_sae_score"]["n_unmeasured"] == 1
    assert len(results["grid"]) == 2 and len(results["random"]) == 1
    assert set(results["mechanism"]) == {
        "replacement",
        "context_dropout",
        "cooccurrence_breaking",
        "replacement_matched_count",
    }
    for curves in results["mechanism"].values():
        assert [point["p"] for point in curves["intrinsic"]] == [0.0, 0.5]
    samples = {row["modifier"]: row["training_samples"] for row in results["mechanism_cells"]}
    base = results["config"]["training_samples"]
    assert samples[None] == samples["replacement"] == samples["cooccurrence_breaking"] == base
    # 1 / (1 - 0.5) times the samples: as many real ones as the unmodified SAE
    assert samples["replacement_matched_count"] == 2 * base
    at_p = {row["kind"]: row for row in results["mechanism_at_p"]}
    assert at_p["replacement_matched_count"]["training_samples"] == [2 * base]
    assert at_p["replacement"]["paired_difference"]["n"] == 1
    for dropped in results["dropped_validation"].values():
        assert dropped["cells"] == 6 and 0 <= dropped["mean_true"] <= 1  # 2 grid + 4 modified mechanism SAEs
    for row in results["grid"]:
        assert 0 <= row["true_absorption_intrinsic"] <= 1
        assert row["letters_probe_f1_passing"] == NUM_LETTERS
    assert (out / "scatter_measured_vs_true.png").stat().st_size > 0
    assert (out / "mechanism_true_absorption_vs_p.png").stat().st_size > 0
    readme = (out / "README.md").read_text()
    assert f"Across {results['spearman_measured_vs_true']['n']} trained SAEs" in readme
    assert "replacement at a matched count of real samples (trained 1/(1-p) times longer) at p 0.5" in readme
    assert (
        "(k = 1 main latent, SAEBench's cosine gates) against the true dropped share, over 6 trained SAEs"
        in readme
    )

    cells = sorted((out / "cells").glob("*.json"))
    stamps = [cell.stat().st_mtime_ns for cell in cells]
    capsys.readouterr()
    assert main(["--tiny", "--out", str(out)]) == 0  # resumes: every cell is read back, none recomputed
    assert "grid:" not in capsys.readouterr().out
    assert [cell.stat().st_mtime_ns for cell in cells] == stamps


def test_cells_of_another_config_are_refused(tmp_path: Path) -> None:
    cells = tmp_path / "cells"
    cells.mkdir()
    (cells / "config.json").write_text(json.dumps({"other": 1}))
    assert main(["--tiny", "--out", str(tmp_path), "--summarise-only"]) == 2


def test_the_gated_scores_spearman_carries_n_p_and_a_bootstrap_interval() -> None:
    from research.absorption_control.report import spearman_with_interval

    rising = spearman_with_interval([(x + 0.01 * (x % 3), x) for x in range(12)])
    assert rising["rho"] > 0.95 and rising["p_value"] < 0.001 and rising["n"] == 12
    assert rising["ci_low"] <= rising["rho"] <= rising["ci_high"] <= 1.0
    shuffled = spearman_with_interval(
        list(zip(range(12), [5, 0, 9, 2, 11, 7, 1, 10, 3, 8, 6, 4], strict=True))
    )
    assert shuffled["p_value"] > 0.5 and shuffled["ci_low"] < 0 < shuffled["ci_high"]  # no relation: covers 0
    assert spearman_with_interval([(0.1, 0.2), (0.3, 0.4)])["rho"] is None


def test_the_published_control_gives_the_gated_k1_headlines_spearman() -> None:
    results = json.loads((Path(__file__).parents[2] / "docs/absorption_control/results.json").read_text())
    headline = results["gate"]["spearman_gated_vs_true"]["k = 1 full-absorption rate (the headline)"]
    assert headline["n"] == results["gate"]["cells_measurable"] >= 10
    assert headline["ci_low"] <= headline["rho"] <= headline["ci_high"]
    readme = (Path(__file__).parents[2] / "docs/absorption_control/README.md").read_text()
    assert f"k = 1 full-absorption rate (the headline) {headline['rho']:.2f} (n {headline['n']}" in readme


def _cell(seed: int, modifier: dict | None, shift: float) -> dict:
    """A control cell (topk d 64 w 320) whose 26 letters all pass the gate; k = 1 rate and truth 0.3 + `shift`,
    with a seed-dependent wobble."""
    letters = []
    for index, letter in enumerate(LETTERS):
        rate = 0.3 + shift + 0.01 * ((index + seed) % 3)
        letters.append(
            {
                "letter": letter,
                "probe_f1": 0.95,
                "num_probe_true_positives": 80,
                "k1_precision": 0.9,
                "k1_recall": 0.8,
                "k1_f1": 0.85,
                "k1_cos_probe_dec": 0.9,
                "main_latents_recall_on_probe_positive": 0.8,
                "absorption_fraction_scaled": rate,
                "full_absorption_rate_scaled": rate,
                "absorption_fraction_k1": rate,
                "full_absorption_rate_k1": rate,
                "absorption_fraction_other_letter_scaled": 0.95,
                "true_absorption": rate,
            }
        )
    spec = {
        "architecture": "topk",
        "hidden_dim": 64,
        "width": 320,
        "k": 2,
        "seed": seed,
        "modifier": modifier,
    }
    name = f"topk-d64-w320-k2-s{seed}" + ("" if modifier is None else f"-{modifier['kind']}-p{modifier['p']}")
    return {"name": name, "spec": spec, "measured": {"letters": letters}}


def test_the_paired_comparison_recovers_a_known_difference_on_a_fixed_letter_set() -> None:
    from research.absorption_control.report import comparison_check

    breaking = {"kind": "cooccurrence_breaking", "p": 0.3}
    mechanism = [_cell(seed, None, 0.0) for seed in range(3)] + [
        _cell(seed, breaking, -0.1) for seed in range(3)
    ]
    random_cell = _cell(0, None, 0.0)
    for letter in random_cell["measured"]["letters"]:
        letter["k1_f1"] = 0.1  # the null the trained main latents beat
    (check,) = comparison_check(mechanism, [random_cell])
    assert check["letter_set"]["n_letters"] == 26 and check["letter_set"]["rule"]["min_baseline_seeds"] == 2
    assert check["measured_difference"]["mean"] == pytest.approx(-0.1)
    assert check["true_difference"]["mean"] == pytest.approx(-0.1)
    assert check["sign_recovered"] and check["measured_interval_excludes_zero"]
    assert check["true_difference_inside_measured_interval"]
    assert comparison_check(mechanism[:1] + mechanism[3:], [random_cell]) == []  # one baseline: no set to fix
    json.dumps(check)  # plain JSON values (no numpy booleans)


def test_two_halves_of_unmodified_seeds_compare_as_equal_truth() -> None:
    from research.absorption_control.report import comparison_check

    mechanism = [_cell(seed, None, 0.0) for seed in range(4)]
    random_cell = _cell(0, None, 0.0)
    for letter in random_cell["measured"]["letters"]:
        letter["k1_f1"] = 0.1
    (check,) = comparison_check(mechanism, [random_cell])
    assert check["equal_truth"] and check["seeds"] == [2, 3]
    assert check["measured_difference"]["low"] <= 0 <= check["measured_difference"]["high"]
    assert check["true_difference"]["mean"] == pytest.approx(check["measured_difference"]["mean"])


def test_a_vocabulary_like_world_weights_its_words_by_zipf_and_keeps_the_letters_world_as_it_was() -> None:
    from research.absorption_control.config import vocabulary_config, vocabulary_wide_config
    from research.absorption_control.synthetic import firing_probabilities

    letters_world = WorldConfig()
    assert (
        letters_world.word_probabilities()
        == [letters_world.word_probability] * letters_world.words_per_letter
    )
    config = vocabulary_config()
    world = config.world
    probabilities = world.word_probabilities()
    assert world.words_per_letter == 50 and probabilities[0] == world.word_probability
    assert probabilities[9] == pytest.approx(world.word_probability / 10)  # rank 10 fires a tenth as often
    assert all(a > b for a, b in zip(probabilities, probabilities[1:], strict=False))
    per_feature = firing_probabilities(world)
    first_word = 26  # features 26.. are the words, letter by letter
    assert per_feature[first_word + 50].item() == pytest.approx(
        probabilities[0]
    )  # the next letter's top word
    assert {spec.seed for spec in config.mechanism_specs()} == set(range(6))
    assert all(spec.width < world.num_words for spec in config.grid_specs())  # narrower: it absorbs
    assert len({(spec.width, spec.k) for spec in config.grid_specs()}) > 1  # a spread of truth to rank
    matched = [
        s for s in config.mechanism_specs() if s.modifier and s.modifier.kind == "replacement_matched_count"
    ]
    assert [config.training_samples_of(spec) for spec in matched] == [
        round(config.training_samples / (1 - spec.modifier.p)) for spec in matched
    ]
    wide = vocabulary_wide_config()
    assert wide.world == world and wide.grid_specs()[0].width >= world.num_words
    with pytest.raises(ControlConfigError, match="word_zipf_exponent"):
        WorldConfig(word_zipf_exponent=-0.5)


def test_a_partial_run_holds_the_paired_mechanism_cells_first() -> None:
    from research.absorption_control.config import vocabulary_config
    from research.absorption_control.run import planned_cells

    config = vocabulary_config()
    cells = planned_cells(config)
    assert len(cells) == len({(part, spec, trained) for part, spec, trained in cells})
    assert cells[0][0] == "random" and cells[0][1].width == config.mechanism_width
    pairs = [(spec.seed, spec.modifier and spec.modifier.kind) for _, spec, _ in cells[1:13]]
    assert pairs == [(seed, kind) for seed in range(6) for kind in (None, "cooccurrence_breaking")]
    kinds = [spec.modifier.kind for _, spec, _ in cells[13:25]]
    assert kinds == ["replacement"] * 6 + ["replacement_matched_count"] * 6
    assert {part for part, _, _ in cells[25:]} == {"grid", "random"}


def test_the_published_vocabulary_world_reads_its_lines_from_its_results() -> None:
    from dataclasses import asdict

    from research.absorption_control.config import vocabulary_config
    from research.absorption_control.report import _fmt, comparison_line, dropped_line, mechanism_line
    from research.absorption_control.run import with_defaults

    folder = Path(__file__).parents[2] / "docs/absorption_control/vocabulary"
    recorded = json.loads((folder / "cells/config.json").read_text())
    assert with_defaults(recorded) == json.loads(json.dumps(asdict(vocabulary_config())))
    results = json.loads((folder / "results.json").read_text())
    readme = (folder / "README.md").read_text()
    checks = results["comparison_check"]
    assert (
        checks[0]["kind"] == "cooccurrence_breaking"
    )  # the known difference first, then the equal-truth halves
    baselines = [row for row in results["mechanism_cells"] if row["modifier"] is None]
    assert [check.get("equal_truth", False) for check in checks[1:]] == [True] * (len(baselines) >= 4)
    for check in checks:
        assert comparison_line(check) in readme
    for label, check in results["dropped_validation"].items():
        assert dropped_line(label, check) in readme
    for row in results["mechanism_at_p"]:
        assert mechanism_line(row) in readme
        multiplier = 1 / (1 - row["p"]) if row["kind"] == "replacement_matched_count" else 1
        assert row["training_samples"] == [round(results["config"]["training_samples"] * multiplier)]
    headline = results["all_trained"]["spearman_gated_vs_true"]["k = 1 full-absorption rate (the headline)"]
    assert f"k = 1 full-absorption rate (the headline) {_fmt(headline['rho'])} (n {headline['n']}" in readme


def test_readmes_reading_of_the_vocabulary_world_holds_in_its_results():
    """README: co-occurrence breaking cuts intrinsic absorption, replacement does not (same or matched sample count,
    rising slightly at the matched count); the paired procedure recovers the known reduction's sign with the truth
    inside its interval, which still includes zero at 6 seeds."""
    root = Path(__file__).resolve().parents[2]
    results = json.loads((root / "docs" / "absorption_control" / "vocabulary" / "results.json").read_text())
    paired = {row["kind"]: row["paired_difference"] for row in results["mechanism_at_p"]}
    assert paired["cooccurrence_breaking"]["high"] < 0
    assert paired["replacement"]["high"] >= 0
    assert paired["replacement_matched_count"]["low"] > 0
    assert all(row["n"] == 6 for row in paired.values())
    check = next(row for row in results["comparison_check"] if row["kind"] == "cooccurrence_breaking")
    assert check["sign_recovered"] and check["true_difference_inside_measured_interval"]
    assert not check["measured_interval_excludes_zero"] and check["measured_difference"]["n"] == 6
    readme = (root / "README.md").read_text()
    assert "co-occurrence breaking cuts the intrinsic absorption while replacement does not" in readme
    assert "at 6 seeds its interval still includes zero" in readme
