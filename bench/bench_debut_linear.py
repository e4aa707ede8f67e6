"""Forward time of DeButLinear against nn.Linear of the same size (CPU, float32).

    .venv/bin/python bench/bench_debut_linear.py [--batch 256] [--repeats 50]

Prints, per shape, the chain, its parameters, both times per batch and their ratio. Both layers
are timed in the same run, interleaved, so machine noise affects them alike. Not a test.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from compiler.nn import DeButLinear, suggest_chain

SHAPES = [(128, 64), (128, 128), (512, 512), (128, 400), (1024, 1024)]


def time_forward(layer: nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        for _ in range(3):
            layer(x)
        start = time.perf_counter()
        for _ in range(repeats):
            layer(x)
        return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--compression", type=float, default=0.85)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(
        f"{'out x in':>11}  {'params':>8}  {'dense':>8}  {'DeBut ms':>9}  {'Linear ms':>9}  "
        "ratio  chain"
    )
    for out_f, in_f in SHAPES:
        chain = suggest_chain(out_f, in_f, compression=args.compression)
        debut, dense = DeButLinear(in_f, out_f, chain), nn.Linear(in_f, out_f)
        x = torch.randn(args.batch, in_f)
        t_debut, t_dense = [], []
        for _ in range(3):  # interleave to share the machine's noise
            t_debut.append(time_forward(debut, x, args.repeats))
            t_dense.append(time_forward(dense, x, args.repeats))
        td, tl = min(t_debut), min(t_dense)
        print(
            f"{out_f:>5} x {in_f:<4} {chain.params:>8,}  {in_f * out_f:>8,}  {td * 1e3:>9.3f}  "
            f"{tl * 1e3:>9.3f}  {td / tl:>5.2f}  {chain}"
        )


if __name__ == "__main__":
    main()
