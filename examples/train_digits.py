"""Train the four shipped digits models (seeded, a few minutes on 2 CPU cores).

    python examples/train_digits.py [--out examples/]

Writes, in the safe model format:

- ``digits_dense.pt``: the MLP 64-128-128-10;
- ``digits_debut.pt``: the same widths with DeBut hidden layers, chains picked by the generator
  with hardware cost in mind;
- ``digits_debut_small.pt``: DeBut chains in all three layers (``SMALL_CHAINS``), about a
  thirteenth of the dense model's MACs, for budgets of a few DSPs;
- ``digits_butterfly.pt``: fixed butterfly hidden layers.

Data: scikit-learn's digits, split ``train_test_split(test_size=0.25, random_state=0,
stratify=y)``, features scaled by 1/16 (the recorded preprocessing). Every model trains on the
whole training split for a fixed schedule. For each DeBut model, a fifth of the training split is
held out once to decide between ALS-initialised (debutize of a trained dense model) and
from-scratch training; the winner is then retrained on the whole training split. The test split
is used only for the figures printed at the end.
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

from compiler.datasets import DatasetRef, load_split
from compiler.frontend import Preprocessing, save_model
from compiler.nn import DeButLinear, butterfly_chain, debutize, suggest_chain
from debut.chain import Chain

DATASET = DatasetRef("sklearn-digits", test_size=0.25, random_state=0, stratify=True)
PREPROCESSING = Preprocessing(scale=1 / 16, offset=0.0)
WIDTHS = (64, 128, 128, 10)
# Weight budgets of the DeBut hidden layers: with the dense output layer and the biases, the
# model keeps under a quarter of the dense model's parameters.
DEBUT_BUDGETS = {"fc1": 1536, "fc2": 3072}
# The small DeBut model: every factor of every layer, the output layer's too, has 256 MACs (the
# last 160), so with one multiplier per pipeline stage 8 DSPs issue a vector every 256 cycles at
# 95% multiplier efficiency; intermediate widths stay at 32 or more (a narrower one caps the rank).
SMALL_CHAINS = {
    "fc1": [[64, 64, 4, 4, 1], [32, 64, 4, 8, 4], [128, 32, 8, 2, 16]],
    "fc2": [[32, 128, 2, 8, 1], [32, 32, 8, 8, 2], [128, 32, 8, 2, 16]],
    "fc3": [[32, 128, 2, 8, 1], [10, 32, 5, 16, 2]],
}


def mlp(hidden: dict[str, nn.Module] | None = None) -> nn.Sequential:
    """64-128-128-10 ReLU MLP; ``hidden`` replaces fc1/fc2 with given modules."""
    hidden = hidden or {}
    layers = OrderedDict()
    for i, (n_in, n_out) in enumerate(itertools.pairwise(WIDTHS)):
        name = f"fc{i + 1}"
        layers[name] = hidden.get(name) or nn.Linear(n_in, n_out)
        if i < len(WIDTHS) - 2:
            layers[f"relu{i + 1}"] = nn.ReLU()
    return nn.Sequential(layers)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train(model, x, y, *, epochs: int, lr: float, seed: int) -> nn.Module:
    """Adam with a cosine schedule, mini-batches of 32, a fixed number of epochs."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(32):
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
    return model.eval()


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # tiny layers: one thread is fastest and immune to a busy core
    split = load_split(DATASET)

    def tensors(x, y):
        return torch.tensor(PREPROCESSING.apply(x), dtype=torch.float32), torch.tensor(y)

    x_train, y_train = tensors(split.x_train, split.y_train)
    x_test, y_test = tensors(split.x_test, split.y_test)
    fit_idx, val_idx = train_test_split(
        np.arange(len(y_train)), test_size=0.2, random_state=args.seed, stratify=split.y_train
    )
    results = []

    def fit(model: nn.Module, lr: float, subset=None) -> nn.Module:
        x, y = (x_train, y_train) if subset is None else (x_train[subset], y_train[subset])
        return train(model, x, y, epochs=args.epochs, lr=lr, seed=args.seed)

    def finish(name: str, model: nn.Module, how: str, started: float) -> None:
        test_acc = accuracy(model, x_test, y_test)
        meta = {"description": f"digits MLP 64-128-128-10, {how}", "test_accuracy": test_acc}
        path = save_model(
            args.out / f"digits_{name}.pt",
            model,
            input_shape=(64,),
            preprocessing=PREPROCESSING,
            dataset=DATASET,
            metadata=meta,
        )
        elapsed = time.perf_counter() - started
        results.append((name, params(model), test_acc, elapsed))
        print(f"  {path}: {params(model):,} params, test accuracy {test_acc:.2%} ({elapsed:.0f} s)")

    print("dense:")
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    dense = fit(mlp(), lr=3e-3)
    finish("dense", dense, "dense layers", started)

    def train_debut(name: str, chains: dict[str, Chain], what: str) -> None:
        """ALS-initialised from the dense model or from scratch, whichever does better on the
        held-out fifth of the training split; the winner is retrained on the whole split."""
        print(f"{name}:")
        started = time.perf_counter()
        for layer, chain in chains.items():
            print(f"  {layer} chain: {chain.describe()}")
        widths = {
            f"fc{i + 1}": (n_in, n_out)
            for i, (n_in, n_out) in enumerate(itertools.pairwise(WIDTHS))
        }

        def from_scratch() -> nn.Module:
            torch.manual_seed(args.seed)
            return mlp({n: DeButLinear(*widths[n], c) for n, c in chains.items()})

        def from_als(teacher: nn.Module) -> nn.Module:
            model, reports = debutize(teacher, chains, sweeps=8, seed=args.seed)
            for report in reports:
                print(f"    ALS {report.line()}")
            return model

        print("  choosing the initialisation on a held-out fifth of the training split:")
        val = (x_train[val_idx], y_train[val_idx])
        val_als = accuracy(fit(from_als(dense_fit), lr=1e-3, subset=fit_idx), *val)
        val_scratch = accuracy(fit(from_scratch(), lr=3e-3, subset=fit_idx), *val)
        print(
            f"  validation accuracy: ALS-initialised {val_als:.2%}, from scratch {val_scratch:.2%}"
        )
        if val_als >= val_scratch:
            model = fit(from_als(dense), lr=1e-3)
            finish(name, model, f"{what}, ALS-initialised from the dense model", started)
        else:
            model = fit(from_scratch(), lr=3e-3)
            finish(name, model, f"{what}, trained from scratch", started)

    torch.manual_seed(args.seed)
    dense_fit = fit(mlp(), lr=3e-3, subset=fit_idx)  # the ALS teacher while choosing
    chains = {
        name: suggest_chain(
            WIDTHS[i + 1], WIDTHS[i], max_params=DEBUT_BUDGETS[name], shape="monotonic"
        )
        for i, name in enumerate(DEBUT_BUDGETS)
    }
    train_debut("debut", chains, "DeBut hidden layers")
    small = {name: Chain.from_list(spec) for name, spec in SMALL_CHAINS.items()}
    train_debut("debut_small", small, "DeBut layers throughout")

    print("butterfly:")
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    bfly = mlp(
        {
            f"fc{i + 1}": DeButLinear(
                WIDTHS[i], WIDTHS[i + 1], butterfly_chain(WIDTHS[i + 1], WIDTHS[i])
            )
            for i in range(2)
        }
    )
    finish("butterfly", fit(bfly, lr=3e-3), "fixed butterfly hidden layers", started)

    print()
    print("| model | params | test accuracy |")
    print("|---|---:|---:|")
    for name, n, acc, _ in results:
        print(f"| digits_{name}.pt | {n:,} | {acc:.2%} |")


if __name__ == "__main__":
    main()
