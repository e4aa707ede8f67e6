"""Fuse each ReLU/ReLU6 into the chain layer it directly follows."""

from __future__ import annotations

from dataclasses import replace

from compiler.ir import Activation, ActivationOp, ChainOp, Graph
from debut.errors import UnsupportedModelError

__all__ = ["fuse_activations"]


def fuse_activations(graph: Graph) -> Graph:
    ops = []
    for op in graph.ops:
        if isinstance(op, ActivationOp):
            previous = ops[-1] if ops else None
            if not isinstance(previous, ChainOp) or previous.activation is not Activation.NONE:
                after = f"follows {previous.name}" if previous else "is the first layer"
                raise UnsupportedModelError(
                    f"{op.name} ({op.kind.value}) must directly follow a linear layer, but {after}"
                )
            ops[-1] = replace(previous, activation=op.kind)
        else:
            ops.append(op)
    return replace(graph, ops=tuple(ops))
