"""`MaskedCacheActivationsRunner`: SAELens's activation caching with the LLM input masked.

A cache freezes one draw of the mask, so its masking settings (p, strategy, mask token, seed) are written next
to it as `masking.json` (and the LLM dtype as `llm_dtype.json`); a run trained on the cache (`use_cached_activations=True`, `masking.p = 0`) copies that
record (and the dtype) into its SAE's metadata. Token ids stored in the cache are the original ones (see the store).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from datasets import Dataset
from sae_lens.cache_activations_runner import CacheActivationsRunner

from sae_mask_plugin.llm_dtype import model_llm_dtype
from sae_mask_plugin.sae_metadata import write_cache_llm_dtype, write_cache_masking
from sae_mask_plugin.training.activations_store import MaskedActivationsStore
from sae_mask_plugin.training.config import MaskedCacheActivationsRunnerConfig
from sae_mask_plugin.training.preflight import preflight
from sae_mask_plugin.training.runner import attach_masking, store_masking_record


class MaskedCacheActivationsRunner(CacheActivationsRunner):
    """`CacheActivationsRunner` whose cached activations come from masked text; same constructor and `run()`."""

    cfg: MaskedCacheActivationsRunnerConfig
    activations_store: MaskedActivationsStore

    def __init__(self, cfg: MaskedCacheActivationsRunnerConfig, override_dataset: Dataset | None = None):
        if not isinstance(cfg, MaskedCacheActivationsRunnerConfig):
            raise TypeError(f"cfg must be a MaskedCacheActivationsRunnerConfig, got {type(cfg).__name__}")
        preflight(
            cfg.masking,
            model_name=cfg.model_name,
            model_class_name=cfg.model_class_name,
            hook_names=[cfg.hook_name],
        )
        super().__init__(cfg, override_dataset)
        self.activations_store = MaskedActivationsStore.from_store(self.activations_store)
        self.mask_token_string = attach_masking(self.activations_store, cfg, self.model)

    def run(self) -> Dataset:
        """Cache as SAELens does, then record the masking; a failed run removes the folder it created."""
        assert self.cfg.new_cached_activations_path is not None
        path = Path(self.cfg.new_cached_activations_path)
        existed = path.exists()
        try:
            dataset = super().run()
        except BaseException:
            if not existed:
                shutil.rmtree(path, ignore_errors=True)
            raise
        write_cache_masking(path, store_masking_record(self.activations_store, self.mask_token_string))
        write_cache_llm_dtype(path, model_llm_dtype(self.model))
        return dataset
