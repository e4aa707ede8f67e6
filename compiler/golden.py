"""Running the IR: in float (calibration, reference) and in integers (the golden model).

The integer run is the bit-exact oracle of every hardware check (docs/fixed-point.md): each
factor multiplies and accumulates exactly in int64, the last factor adds the bias at the
accumulator scale and applies the activation, and every accumulator is requantised (round half
up, saturate) into the next tensor's format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compiler.ir import Activation, ActivationOp, BatchNormOp, ChainOp, Graph
from debut.chain import Factor
from debut.errors import QuantizationError
from debut.fixed import requantize

__all__ = [
    "IntegerRun",
    "apply_factor",
    "factor_tensor_names",
    "quantize_input",
    "run_float",
    "run_integer",
]


def apply_factor(factor: Factor, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x @ B.T`` for one factor, batch-first; exact for integer arrays."""
    batch = x.shape[0]
    w = np.asarray(theta).reshape(factor.nb, factor.t, factor.r, factor.s)
    xs = x.reshape(batch, factor.nb, factor.s, factor.t)
    y = np.einsum("ndac,bncd->bnad", w, xs)
    return y.reshape(batch, factor.p)


def factor_tensor_names(op: ChainOp) -> list[str]:
    """Names of the tensors each factor produces: ``layer.f0``, ... and the layer itself last."""
    n = len(op.chain)
    return [f"{op.name}.f{k}" for k in range(n - 1)] + [op.name]


def run_float(graph: Graph, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Float64 forward of preprocessed inputs; returns the output and every tensor by name."""
    x = np.asarray(x, dtype=np.float64)
    trace = {"input": x}
    for op in graph.ops:
        if isinstance(op, ChainOp):
            names = factor_tensor_names(op)
            parts = op.chain.split(op.twiddle)
            for k, factor in enumerate(op.chain.factors):
                x = apply_factor(factor, parts[k], x)
                if k == len(parts) - 1:
                    x = op.activation.apply(x + op.bias)
                trace[names[k]] = x
        elif isinstance(op, BatchNormOp):
            x = (x - op.mean) / np.sqrt(op.var + op.eps) * op.weight + op.bias
            trace[op.name] = x
        elif isinstance(op, ActivationOp):
            x = op.kind.apply(x)
            trace[op.name] = x
    return x, trace


def quantize_input(graph: Graph, raw: np.ndarray) -> np.ndarray:
    """Raw features to input integers: the model's preprocessing, then the input format."""
    if graph.input_format is None:
        raise QuantizationError("the graph has no input format yet; quantise it first")
    return graph.input_format.quantize(graph.preprocessing.apply(np.asarray(raw, np.float64)))


@dataclass
class IntegerRun:
    """Output integers (in the graph's output format), every tensor's integers by name, and
    how many values saturated in each tensor."""

    output: np.ndarray
    trace: dict[str, np.ndarray] = field(default_factory=dict)
    saturations: dict[str, int] = field(default_factory=dict)


def _activation_int(kind: Activation, acc: np.ndarray, frac: int) -> np.ndarray:
    if kind is Activation.RELU:
        return np.maximum(acc, 0)
    if kind is Activation.RELU6:
        return np.clip(acc, 0, 6 << frac) if frac >= 0 else np.clip(acc, 0, 6 >> -frac)
    return acc


def run_integer(graph: Graph, x_int: np.ndarray) -> IntegerRun:
    """The golden model: the quantised network on input integers (batch-first)."""
    x = np.asarray(x_int, dtype=np.int64)
    fmt = graph.input_format
    if fmt is None or any(op.quant is None for op in graph.layers):
        raise QuantizationError("the graph is not quantised; run the quantisation pipeline first")
    if x.ndim != 2 or x.shape[1] != graph.in_features:
        raise QuantizationError(f"input must have shape (N, {graph.in_features}), not {x.shape}")
    if x.min(initial=0) < fmt.min_int or x.max(initial=0) > fmt.max_int:
        raise QuantizationError(f"input integers must lie in {fmt.min_int}..{fmt.max_int} ({fmt})")
    run = IntegerRun(output=x, trace={"input": x})
    for op in graph.ops:
        if not isinstance(op, ChainOp):
            raise QuantizationError(
                f"{op.name}: only chain layers can run in integers; fold it first"
            )
        q = op.quant
        names = factor_tensor_names(op)
        parts = op.chain.split(q.int_twiddle)
        for k, factor in enumerate(op.chain.factors):
            acc = apply_factor(factor, parts[k], x)
            if k == len(parts) - 1:
                acc = _activation_int(op.activation, acc + q.int_bias, q.acc_frac(k))
            x, saturated = requantize(acc, q.shift(k), q.out_formats[k])
            run.trace[names[k]] = x
            run.saturations[names[k]] = saturated
    run.output = x
    return run
