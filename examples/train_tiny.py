"""Train the two shipped tiny-board digits models (seeded, about a minute on 2 CPU cores).

    python examples/train_tiny.py [--out examples/]

Writes, in the safe model format, a pair for the iCEBreaker (iCE40 UP5K: 8 DSPs, 5,280 logic
cells, 30 block RAMs of 4 Kb):

- ``digits_tiny_dense.pt``: the MLP 64-64-64-10 (8,832 MACs);
- ``digits_tiny_debut.pt``: its DeBut twin, each hidden layer a chain of two factors of 8 x 8
  blocks (``TINY_CHAINS``, 1,024 MACs each), the output layer dense: 2,688 MACs, under a third of
  the dense model's.

Data, preprocessing and training as ``train_digits.py``: scikit-learn's digits with its fixed
split, features scaled by 1/16, Adam with a cosine schedule. The DeBut model is initialised by
ALS from the dense model or trained from scratch, whichever does better on a held-out fifth of
the training split, then trained on the whole split. The test split is used only for the
figures printed at the end.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from train_digits import DATASET, PREPROCESSING, accuracy, params, train

from compiler.datasets import load_split
from compiler.frontend import save_model
from compiler.nn import DeButLinear, debutize
from debut.chain import Chain

WIDTHS = (64, 64, 64, 10)
TINY_CHAINS = {
    "fc1": [[64, 64, 8, 8, 1], [64, 64, 8, 8, 8]],
    "fc2": [[64, 64, 8, 8, 1], [64, 64, 8, 8, 8]],
}


def mlp(hidden: dict[str, nn.Module] | None = None) -> nn.Sequential:
    """64-64-64-10 ReLU MLP; ``hidden`` replaces fc1/fc2 with given modules."""
    hidden = hidden or {}
    layers = OrderedDict()
    for i, (n_in, n_out) in enumerate(itertools.pairwise(WIDTHS)):
        name = f"fc{i + 1}"
        layers[name] = hidden.get(name) or nn.Linear(n_in, n_out)
        if i < len(WIDTHS) - 2:
            layers[f"relu{i + 1}"] = nn.ReLU()
    return nn.Sequential(layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    split = load_split(DATASET)

    def tensors(x, y):
        return torch.tensor(PREPROCESSING.apply(x), dtype=torch.float32), torch.tensor(y)

    x_train, y_train = tensors(split.x_train, split.y_train)
    x_test, y_test = tensors(split.x_test, split.y_test)
    fit_idx, val_idx = train_test_split(
        np.arange(len(y_train)), test_size=0.2, random_state=args.seed, stratify=split.y_train
    )

    def fit(model: nn.Module, lr: float, subset=None) -> nn.Module:
        x, y = (x_train, y_train) if subset is None else (x_train[subset], y_train[subset])
        return train(model, x, y, epochs=args.epochs, lr=lr, seed=args.seed)

    def save(name: str, model: nn.Module, how: str, started: float) -> None:
        test_acc = accuracy(model, x_test, y_test)
        meta = {"description": f"digits MLP 64-64-64-10, {how}", "test_accuracy": test_acc}
        path = save_model(
            args.out / f"digits_tiny_{name}.pt",
            model,
            input_shape=(64,),
            preprocessing=PREPROCESSING,
            dataset=DATASET,
            metadata=meta,
        )
        elapsed = time.perf_counter() - started
        print(f"  {path}: {params(model):,} params, test accuracy {test_acc:.2%} ({elapsed:.0f} s)")

    print("dense:")
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    dense = fit(mlp(), lr=3e-3)
    save("dense", dense, "dense layers", started)

    print("debut:")
    started = time.perf_counter()
    chains = {name: Chain.from_list(spec) for name, spec in TINY_CHAINS.items()}

    def from_scratch() -> nn.Module:
        torch.manual_seed(args.seed)
        return mlp({n: DeButLinear(64, 64, c) for n, c in chains.items()})

    def from_als(teacher: nn.Module) -> nn.Module:
        return debutize(teacher, chains, sweeps=8, seed=args.seed)[0]

    torch.manual_seed(args.seed)
    teacher = fit(mlp(), lr=3e-3, subset=fit_idx)
    val = (x_train[val_idx], y_train[val_idx])
    val_als = accuracy(fit(from_als(teacher), lr=1e-3, subset=fit_idx), *val)
    val_scratch = accuracy(fit(from_scratch(), lr=3e-3, subset=fit_idx), *val)
    print(f"  validation accuracy: ALS-initialised {val_als:.2%}, from scratch {val_scratch:.2%}")
    if val_als >= val_scratch:
        model = fit(from_als(dense), lr=1e-3)
        save("debut", model, "DeBut hidden layers, ALS-initialised from the dense model", started)
    else:
        model = fit(from_scratch(), lr=3e-3)
        save("debut", model, "DeBut hidden layers, trained from scratch", started)


if __name__ == "__main__":
    main()
