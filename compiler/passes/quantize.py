"""Choose every tensor's fixed-point format and the integer weights and biases.

Activations: ``act_bits`` wide, the most fractional bits that hold the calibrated range times
``HEADROOM``; a layer output after ReLU/ReLU6 is unsigned (its sign bit would never be used),
other tensors are signed, the input is unsigned when the calibration data never goes negative.
Weights: ``weight_bits`` wide per factor, the most fractional bits that hold the factor's
largest magnitude. Biases: rounded (half up) at the last factor's accumulator scale.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from compiler.ir import ChainOp, Graph, LayerQuant, frozen_array
from debut.errors import QuantizationError
from debut.fixed import Fixed, round_half_up

__all__ = ["HEADROOM", "quantize"]

HEADROOM = 1.0  # calibrated max-abs is scaled by this before the format is chosen


def _layer_quant(op: ChainOp, in_format: Fixed, act_bits: int, weight_bits: int) -> LayerQuant:
    if op.ranges is None:
        raise QuantizationError(f"{op.name} has no calibration ranges; calibrate before quantising")
    parts = op.chain.split(op.twiddle)
    weight_formats = tuple(
        Fixed.for_range(weight_bits, float(np.abs(p).max()), signed=True) for p in parts
    )
    int_twiddle = np.concatenate(
        [f.quantize(p) for f, p in zip(weight_formats, parts, strict=True)]
    )
    n = len(parts)
    out_formats = tuple(
        Fixed.for_range(
            act_bits,
            op.ranges[k] * HEADROOM,
            signed=not (k == n - 1 and op.activation.nonnegative),
        )
        for k in range(n)
    )
    quant = LayerQuant(
        in_format=in_format,
        weight_formats=weight_formats,
        out_formats=out_formats,
        int_twiddle=frozen_array(int_twiddle, np.int64),
        int_bias=frozen_array([], np.int64),
    )
    bias_scale = 2.0**quant.bias_frac
    int_bias = round_half_up(op.bias * bias_scale)
    return replace(quant, int_bias=frozen_array(int_bias, np.int64))


def quantize(graph: Graph, *, act_bits: int, weight_bits: int) -> Graph:
    if graph.input_range is None:
        raise QuantizationError("the graph has no calibration ranges; calibrate before quantising")
    fmt = Fixed.for_range(act_bits, graph.input_range * HEADROOM, signed=graph.input_signed)
    graph = replace(graph, input_format=fmt)
    ops = []
    for op in graph.ops:
        if isinstance(op, ChainOp):
            op = replace(op, quant=_layer_quant(op, fmt, act_bits, weight_bits))
            fmt = op.quant.out_formats[-1]
        ops.append(op)
    return replace(graph, ops=tuple(ops))
