"""Record the value range of every tensor on calibration data (preprocessed inputs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from compiler.golden import factor_tensor_names, run_float
from compiler.ir import ChainOp, Graph
from debut.errors import QuantizationError

__all__ = ["calibrate"]


def calibrate(graph: Graph, *, data: np.ndarray) -> Graph:
    """``data``: preprocessed calibration inputs, one sample per row."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != graph.in_features or len(data) == 0:
        raise QuantizationError(
            f"calibration data must have shape (N, {graph.in_features}) with N > 0, "
            f"not {data.shape}"
        )
    _, trace = run_float(graph, data)
    for name, values in trace.items():
        if not np.isfinite(values).all():
            raise QuantizationError(
                f"tensor {name} takes values that are not finite (NaN, or beyond float range) on "
                "the calibration data; check the model's weights"
            )
    ops = []
    for op in graph.ops:
        if isinstance(op, ChainOp):
            ranges = tuple(float(np.abs(trace[n]).max()) for n in factor_tensor_names(op))
            op = replace(op, ranges=ranges)
        ops.append(op)
    return replace(
        graph,
        ops=tuple(ops),
        input_range=float(np.abs(data).max()),
        input_signed=bool(data.min() < 0),
    )
