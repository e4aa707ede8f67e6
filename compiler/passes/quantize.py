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

from compiler.golden import factor_tensor_names
from compiler.ir import ChainOp, Graph, LayerQuant, frozen_array
from debut.errors import QuantizationError
from debut.fixed import MAX_FRAC, MIN_FRAC, Fixed, round_half_up

__all__ = ["HEADROOM", "quantize"]

HEADROOM = 1.0  # calibrated max-abs is scaled by this before the format is chosen
MAX_BIAS_BITS = 62  # an integer bias beyond this would leave no room in a 63-bit accumulator


def _layer_quant(op: ChainOp, in_format: Fixed, act_bits: int, weight_bits: int) -> LayerQuant:
    if op.ranges is None:
        raise QuantizationError(f"{op.name} has no calibration ranges; calibrate before quantising")
    parts = op.chain.split(op.twiddle)
    weight_formats = tuple(
        Fixed.for_range(weight_bits, float(np.abs(p).max()), signed=True) for p in parts
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
    for k, name in enumerate(factor_tensor_names(op)):
        _check_carried(f"{op.name}.w{k}", weight_formats[k])
        _check_carried(name, out_formats[k])
    int_twiddle = np.concatenate(
        [f.quantize(p) for f, p in zip(weight_formats, parts, strict=True)]
    )
    quant = LayerQuant(
        in_format=in_format,
        weight_formats=weight_formats,
        out_formats=out_formats,
        int_twiddle=frozen_array(int_twiddle, np.int64),
        int_bias=frozen_array([], np.int64),
    )
    scaled = op.bias * 2.0**quant.bias_frac
    if not np.all(np.abs(scaled) < 2.0**MAX_BIAS_BITS):
        raise QuantizationError(
            f"tensor {op.name}.bias needs more than {MAX_BIAS_BITS} bits at its accumulator's "
            f"scale (2^{quant.bias_frac}); rescale the model's weights or inputs"
        )
    return replace(quant, int_bias=frozen_array(round_half_up(scaled), np.int64))


def quantize(graph: Graph, *, act_bits: int, weight_bits: int) -> Graph:
    if graph.input_range is None:
        raise QuantizationError("the graph has no calibration ranges; calibrate before quantising")
    fmt = Fixed.for_range(act_bits, graph.input_range * HEADROOM, signed=graph.input_signed)
    _check_carried("input", fmt)
    graph = replace(graph, input_format=fmt)
    ops = []
    for op in graph.ops:
        if isinstance(op, ChainOp):
            op = replace(op, quant=_layer_quant(op, fmt, act_bits, weight_bits))
            fmt = op.quant.out_formats[-1]
        ops.append(op)
    return replace(graph, ops=tuple(ops))


def _check_carried(name: str, fmt: Fixed) -> None:
    """A format the manifest and the host link can carry (``MIN_FRAC..MAX_FRAC`` fractional
    bits): weights or activations far from 1 in magnitude need one they cannot."""
    if not MIN_FRAC <= fmt.frac <= MAX_FRAC:
        raise QuantizationError(
            f"tensor {name} needs the format {fmt} (values near 2^{fmt.width - fmt.frac}), beyond "
            f"the {MIN_FRAC}..{MAX_FRAC} fractional bits a format may have; rescale the model's "
            "weights or inputs"
        )
