"""Every seam of `sae_mask_plugin._saelens` against the installed SAELens: the private member it stands for
exists with the expected signature, and the seam does what it claims. A SAELens release that renames or reshapes
one of them fails here first."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets
import pytest
import torch
from sae_lens import LoggingConfig, TopKTrainingSAEConfig
from sae_lens.config import SAETrainerConfig
from sae_lens.multi_sae_training_runner import MultiSAETrainingRunner, MultiSAETrainingRunnerConfig
from sae_lens.saes.topk_sae import TopKTrainingSAE
from sae_lens.training.activations_store import ActivationsStore
from sae_lens.training.multi_sae_trainer import MultiSAETrainer
from sae_lens.training.sae_trainer import SAETrainer
from tiny_transformer import TINY_D_MODEL, TINY_HOOK

from sae_mask_plugin._saelens import ActivationsStoreSeams, MultiSAETrainingRunnerSeams, on_step_end

MLP_HOOK = "blocks.1.mlp.hook_post"  # 64 wide: hooks of different widths
MLP_WIDTH = 64


def parameters(method: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(method).parameters)


@pytest.fixture(scope="module")
def token_rows() -> datasets.Dataset:
    """40 pretokenized windows of 32 tokens (one epoch: 1,280 tokens), each opening with token 100."""
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(200, 5000, (40, 32), generator=generator)
    rows[:, 0] = 100
    return datasets.Dataset.from_dict({"tokens": rows.tolist()})


def single_hook_store(cls: type[ActivationsStore], model, rows) -> ActivationsStore:
    return cls(
        model=model,
        dataset=rows,
        streaming=False,
        hook_name=TINY_HOOK,
        hook_head_index=None,
        context_size=32,
        d_in=TINY_D_MODEL,
        n_batches_in_buffer=4,
        total_training_tokens=4096,
        store_batch_size_prompts=4,
        train_batch_size_tokens=32,
        prepend_bos=False,
        normalize_activations="none",
        device=torch.device("cpu"),
        dtype="float32",
        exclude_special_tokens=torch.tensor([100, 101, 102]),
    )


def multi_hook_store(cls: type[ActivationsStore], model, rows) -> ActivationsStore:
    return cls.from_config_multi_hook(
        model=model,
        dataset=rows,
        hook_names=[TINY_HOOK, MLP_HOOK],
        hook_d_ins={TINY_HOOK: TINY_D_MODEL, MLP_HOOK: MLP_WIDTH},
        streaming=False,
        context_size=32,
        n_batches_in_buffer=4,
        store_batch_size_prompts=4,
        train_batch_size_tokens=32,
        prepend_bos=False,
    )


def equal(
    got: torch.Tensor | dict[str, torch.Tensor], expected: torch.Tensor | dict[str, torch.Tensor]
) -> bool:
    if isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected)
        return all(torch.equal(got[hook], expected[hook]) for hook in expected)
    assert isinstance(got, torch.Tensor)
    return torch.equal(got, expected)


class CountingStore(ActivationsStoreSeams):
    passes = 0
    windows = 0

    def iterate_context_windows(self) -> Iterator[torch.Tensor]:
        self.passes += 1
        for window in super().iterate_context_windows():
            self.windows += 1
            yield window


def test_from_store_adopts_a_stock_store_and_refuses_a_started_one(tiny_model, token_rows) -> None:
    # SAELens's private parts it relies on: the lazily built stream, state in the instance `__dict__`.
    assert ActivationsStore._dataloader is None
    assert not hasattr(ActivationsStore, "__slots__")
    stock = single_hook_store(ActivationsStore, tiny_model, token_rows)
    adopted = CountingStore.from_store(stock)
    assert type(adopted) is CountingStore
    assert adopted.__dict__.keys() >= {"model", "dataset", "iterable_sequences", "train_batch_size_tokens"}
    # the context windows are drawn by the adopted store (its generator was rebound), not the stock one
    torch.manual_seed(0)
    batch = next(adopted)
    assert adopted.passes == 1 and adopted.windows > 0
    torch.manual_seed(0)
    assert torch.equal(batch, next(single_hook_store(ActivationsStore, tiny_model, token_rows)))

    next(stock)
    with pytest.raises(ValueError, match="has not started streaming"):
        CountingStore.from_store(stock)


def test_iterate_context_windows_is_what_saelens_draws_every_epoch(tiny_model, token_rows) -> None:
    assert parameters(ActivationsStore._iterate_tokenized_sequences) == ["self"]
    stock = single_hook_store(ActivationsStore, tiny_model, token_rows)
    store = single_hook_store(CountingStore, tiny_model, token_rows)
    windows = list(itertools.islice(store.iterate_context_windows(), 5))
    assert all(torch.equal(a, b) for a, b in zip(windows, stock._iterate_tokenized_sequences(), strict=False))
    store = single_hook_store(CountingStore, tiny_model, token_rows)
    for _ in range(15):  # 60 windows of a 40-window dataset: SAELens starts the second pass through it
        store.get_batch_tokens()
    assert store.passes == 2 and store.windows == 60


def test_filtered_activations_is_saelens_filtered_stream(tiny_model, token_rows) -> None:
    assert parameters(ActivationsStore._iterate_filtered_activations) == ["self"]
    store = single_hook_store(ActivationsStoreSeams, tiny_model, token_rows)
    stock = single_hook_store(ActivationsStore, tiny_model, token_rows)
    rows = list(itertools.islice(store.filtered_activations(), 12))  # 48 windows: into the second epoch
    expected = [stock.get_filtered_llm_batch() for _ in range(10)]
    assert all(equal(a, b) for a, b in zip(rows, expected, strict=False))
    assert rows[0].shape == (4 * 31, TINY_D_MODEL)  # the special first tokens are filtered out
    assert len(rows) == 12


def test_the_multi_hook_batch_override_is_what_saelens_multi_hook_stream_draws(
    tiny_model, token_rows
) -> None:
    assert parameters(ActivationsStore._get_filtered_multi_hook_llm_batch) == ["self", "raise_on_epoch_end"]
    assert parameters(ActivationsStore._iterate_filtered_multi_hook_activations) == ["self"]
    stock = multi_hook_store(ActivationsStore, tiny_model, token_rows)
    store = multi_hook_store(ActivationsStoreSeams, tiny_model, token_rows)
    first = next(store.filtered_multi_hook_activations())
    assert equal(first, stock._get_filtered_multi_hook_llm_batch())
    assert equal(store.get_filtered_multi_hook_llm_batch(), stock._get_filtered_multi_hook_llm_batch())
    assert first[MLP_HOOK].shape == (4 * 32, MLP_WIDTH)

    class Marked(ActivationsStoreSeams):
        def get_filtered_multi_hook_llm_batch(
            self, raise_on_epoch_end: bool = False
        ) -> dict[str, torch.Tensor]:
            return {"marked": torch.tensor([float(raise_on_epoch_end)])}

    marked = multi_hook_store(Marked, tiny_model, token_rows)
    assert equal(next(marked.filtered_multi_hook_activations()), {"marked": torch.tensor([1.0])})


def test_hook_widths_name_a_multi_hook_stores_hooks_in_packing_order(tiny_model, token_rows) -> None:
    assert ActivationsStore._hook_names is None and ActivationsStore._hook_d_ins is None
    assert multi_hook_store(ActivationsStoreSeams, tiny_model, token_rows).hook_widths == {
        TINY_HOOK: TINY_D_MODEL,
        MLP_HOOK: MLP_WIDTH,
    }
    assert single_hook_store(ActivationsStoreSeams, tiny_model, token_rows).hook_widths is None


def trainer_config(steps: int) -> SAETrainerConfig:
    return SAETrainerConfig(total_training_samples=steps * 16, train_batch_size_samples=16, lr_end=3e-4)


def tiny_sae() -> TopKTrainingSAE:
    torch.manual_seed(0)
    return TopKTrainingSAE(TopKTrainingSAEConfig(d_in=8, d_sae=16, k=2))


def random_batches() -> Iterator[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    while True:
        yield torch.randn(16, 8, generator=generator)


@pytest.mark.parametrize("multi", [False, True], ids=["SAETrainer", "MultiSAETrainer"])
def test_on_step_end_calls_back_after_each_step_and_sets_the_progress_interval(multi: bool, capsys) -> None:
    outputs = "step_outputs" if multi else "step_output"
    pbar_update = MultiSAETrainer._update_pbar if multi else SAETrainer._update_pbar
    assert parameters(pbar_update) == ["self", outputs, "pbar", "update_interval"]
    assert inspect.signature(pbar_update).parameters["update_interval"].default == 100
    if multi:
        trainer: Any = MultiSAETrainer(
            cfg=trainer_config(12),
            saes={"a": tiny_sae()},
            hook_names={"a": "hook"},
            data_provider=({"hook": batch} for batch in random_batches()),
        )
    else:
        trainer = SAETrainer(cfg=trainer_config(12), sae=tiny_sae(), data_provider=random_batches())
    seen: list[tuple[int, int]] = []
    on_step_end(trainer, lambda: seen.append((trainer.n_training_steps, trainer.n_training_samples)), 5)
    trainer.fit()
    assert seen == [(step, step * 16) for step in range(1, 13)]  # after the step's counters advanced
    err = capsys.readouterr().err
    assert "5| " in err and "10| " in err and "12| " not in err


def test_the_multi_sae_runner_hooks_exist_with_saelens_signatures() -> None:
    assert parameters(MultiSAETrainingRunner._run_with_interruption_handling) == ["self", "trainer"]
    assert parameters(MultiSAETrainingRunner._save_runner_checkpoint_files) == ["self", "checkpoint_path"]
    assert parameters(MultiSAETrainingRunner._save_final_outputs) == ["self", "saes", "trainer"]


def test_the_multi_sae_runner_seams_run_saelens_hooks_under_public_names(
    tmp_path, tiny_model, token_rows
) -> None:
    calls: list[tuple[str, Any]] = []

    class Recording(MultiSAETrainingRunnerSeams):
        def run_trainer_with_interruption_handling(self, trainer):
            calls.append(("fit", type(trainer).__name__))
            return super().run_trainer_with_interruption_handling(trainer)

        def save_checkpoint(self, checkpoint_path):
            calls.append(("checkpoint", Path(checkpoint_path).name))
            super().save_checkpoint(checkpoint_path)

        def save_final_saes(self, saes, trainer, output_path):
            calls.append(("final", output_path))
            super().save_final_saes(saes, trainer, str(tmp_path / "elsewhere"))

    cfg = MultiSAETrainingRunnerConfig(
        saes={"k2": TopKTrainingSAEConfig(d_in=TINY_D_MODEL, d_sae=64, k=2)},
        hook_names=TINY_HOOK,
        context_size=32,
        store_batch_size_prompts=4,
        n_batches_in_buffer=4,
        train_batch_size_tokens=128,
        training_tokens=1024,
        n_checkpoints=1,
        checkpoint_path=str(tmp_path / "checkpoints"),
        output_path=str(tmp_path / "out"),
        logger=LoggingConfig(log_to_wandb=False),
    )
    Recording(cfg, override_model=tiny_model, override_dataset=token_rows).run()
    assert calls == [("fit", "MultiSAETrainer"), ("checkpoint", "640"), ("final", str(tmp_path / "out"))]
    assert [path.name for path in tmp_path.glob("checkpoints/*/640/activations_store_state.safetensors")]
    assert (tmp_path / "elsewhere" / "k2" / "sae_weights.safetensors").is_file()
    assert not (tmp_path / "out").exists()
    assert cfg.output_path == str(tmp_path / "out")  # the save went elsewhere without changing the config
