"""Fold each inference-time batch norm into the chain layer it directly follows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from compiler.ir import BatchNormOp, ChainOp, Graph, frozen_array
from debut.errors import UnsupportedModelError

__all__ = ["fold_batchnorm"]


def _fold(layer: ChainOp, bn: BatchNormOp) -> ChainOp:
    scale = bn.weight / np.sqrt(bn.var + bn.eps)
    last = layer.chain.factors[-1]
    start = layer.chain.offsets[-2]
    twiddle = np.array(layer.twiddle)
    theta = twiddle[start:].reshape(last.nb, last.t, last.r, last.s)
    # row b*r*t + a*t + d of the last factor is scaled: theta[b, d, a, :]
    rows = scale.reshape(last.nb, last.r, last.t).transpose(0, 2, 1)
    theta *= rows[..., None]
    bias = scale * (layer.bias - bn.mean) + bn.bias
    return replace(
        layer, twiddle=frozen_array(twiddle, np.float64), bias=frozen_array(bias, np.float64)
    )


def fold_batchnorm(graph: Graph) -> Graph:
    ops = []
    for op in graph.ops:
        if isinstance(op, BatchNormOp):
            previous = ops[-1] if ops else None
            if not isinstance(previous, ChainOp) or previous.activation.nonnegative:
                after = f"follows {previous.name}" if previous else "is the first layer"
                raise UnsupportedModelError(
                    f"{op.name} (BatchNorm1d) must directly follow a linear layer to be folded "
                    f"into it, but {after}"
                )
            ops[-1] = _fold(previous, op)
        else:
            ops.append(op)
    return replace(graph, ops=tuple(ops))
