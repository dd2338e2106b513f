"""Where the OOD eval can discriminate: the dense oracle of every OOD task at some hooks, as a Markdown table.

The oracle does not depend on any SAE, so this needs only the model (activations are cached under `--cache`,
the same cache `sae-mask eval` uses when given the same folder):

    python -m research.ood_signal_table --layers 6,12,20 --cache evals/cache
"""

from __future__ import annotations

import argparse
import statistics

from sae_mask_plugin.embedded.model import EMBEDDED_MODEL_NAME
from sae_mask_plugin.embedded.probing_data import INVALID_OOD_TASKS
from sae_mask_plugin.evals.activations import ActivationCache
from sae_mask_plugin.evals.common import LazyModel
from sae_mask_plugin.evals.ood_probing.eval_config import OodProbingEvalConfig, cpu_preset
from sae_mask_plugin.evals.ood_probing.main import TaskData, cached_oracle, ood_signal


def oracle_rows(config: OodProbingEvalConfig, cache: ActivationCache) -> list[dict[str, object]]:
    """Per task: the oracle's ID / OOD accuracy and OOD AUC (means over split seeds), the OOD majority rate and
    the signal test, as the eval computes them."""
    rows = []
    for task in config.task_names:
        data = TaskData(cache, task, config)
        oracle = cached_oracle(data, config, cache.root)
        ood_accuracy = statistics.mean(r.ood_accuracy for r in oracle)
        signal = ood_signal(ood_accuracy, data.y_ood, config.signal_alpha)
        rows.append(
            {
                "task": task,
                "id": statistics.mean(r.id_accuracy for r in oracle),
                "ood": ood_accuracy,
                "majority": signal.majority_rate,
                "p": signal.p_value,
                "auc": statistics.mean(r.ood_auc for r in oracle),
                "n_ood": len(data.y_ood),
                "signal": signal.has_signal,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=EMBEDDED_MODEL_NAME)
    parser.add_argument("--layers", default="12", help="comma-separated block indices (hook_resid_post)")
    parser.add_argument("--cache", required=True, help="activation cache folder")
    args = parser.parse_args()
    config = cpu_preset(args.model)
    model = LazyModel(args.model, config.llm_dtype, "cpu")
    print(
        f"Dense oracle per OOD task, {args.model}, CPU preset ({config.num_train} train / {config.num_id_test} "
        f"ID test, {len(config.split_seeds)} split seeds, {config.cv_folds}-fold CV): ID / OOD accuracy, OOD "
        "majority rate, one-sided binomial p, OOD AUC; * = OOD signal (p < "
        f"{config.signal_alpha})\n"
    )
    layers = [int(layer) for layer in args.layers.split(",")]
    table = {}
    for layer in layers:
        hook = f"blocks.{layer}.hook_resid_post"
        cache = ActivationCache(
            args.cache, args.model, hook, config.max_seq_len, config.llm_batch_size, model.get
        )
        table[layer] = oracle_rows(config, cache)
    print(
        "| task | OOD texts | majority | "
        + " | ".join(f"layer {layer}: ID / OOD, p, AUC" for layer in layers)
    )
    print("|---|---|---|" + "---|" * len(layers))
    for index, task in enumerate(config.task_names):
        first = table[layers[0]][index]
        cells = [
            f"{row['id']:.2f} / {row['ood']:.2f}{'*' if row['signal'] else ''}, {row['p']:.2g}, {row['auc']:.2f}"
            for row in (table[layer][index] for layer in layers)
        ]
        name = f"{task} (invalid)" if task in INVALID_OOD_TASKS else task
        print(f"| {name} | {first['n_ood']} | {first['majority']:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
