"""Size every factor's accumulator for the worst case over all inputs the formats allow.

For each output, the accumulator spans the sum over its inputs of the extreme products of the
constant integer weight with the input format's extremes, plus the bias (last factor) and the
rounding constant of the requantisation. No input can overflow the result.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from compiler.ir import ChainOp, Graph, LayerQuant
from debut.fixed import bits_for_range

__all__ = ["accumulator_bounds", "size_accumulators"]


def accumulator_bounds(op: ChainOp, k: int) -> tuple[int, int]:
    """Smallest and largest value factor k's accumulator can take, over all inputs."""
    q = op.quant
    factor = op.chain.factors[k]
    weights = op.chain.split(q.int_twiddle)[k].reshape(factor.nb, factor.t, factor.r, factor.s)
    lo_in, hi_in = q.in_formats[k].min_int, q.in_formats[k].max_int
    products = np.stack([weights * lo_in, weights * hi_in])
    low = products.min(axis=0).sum(axis=-1)
    high = products.max(axis=0).sum(axis=-1)
    if k == len(op.chain) - 1:
        bias = q.int_bias.reshape(factor.nb, factor.r, factor.t).transpose(0, 2, 1)
        low, high = low + bias, high + bias
    shift = q.shift(k)
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    return int(low.min()), int(high.max()) + rounding


def _sized(op: ChainOp) -> ChainOp:
    widths = tuple(bits_for_range(*accumulator_bounds(op, k)) for k in range(len(op.chain)))
    quant: LayerQuant = replace(op.quant, acc_widths=widths)
    return replace(op, quant=quant)


def size_accumulators(graph: Graph) -> Graph:
    ops = tuple(_sized(op) if isinstance(op, ChainOp) else op for op in graph.ops)
    return replace(graph, ops=ops)
