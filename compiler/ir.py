"""The compiler's intermediate representation: an immutable sequence of typed operations.

The front end produces ``ChainOp`` (a DeBut or dense linear layer), ``BatchNormOp`` and
``ActivationOp`` nodes; passes fold batch norms and activations into the chain layers, balance
factor scales, attach calibration ranges, then fixed-point formats and integer weights
(``LayerQuant``). Nodes are frozen; passes build new ones with ``dataclasses.replace``. Arrays
held by nodes are made read-only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from debut.chain import Chain
from debut.fixed import Fixed
from debut.preprocessing import Preprocessing

__all__ = [
    "Activation",
    "ActivationOp",
    "BatchNormOp",
    "ChainOp",
    "Graph",
    "LayerQuant",
    "frozen_array",
]


def frozen_array(values, dtype) -> np.ndarray:
    """A read-only copy, so that IR nodes cannot be changed behind a pass's back."""
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


class Activation(enum.Enum):
    NONE = "none"
    RELU = "relu"
    RELU6 = "relu6"

    def apply(self, x: np.ndarray) -> np.ndarray:
        """In float."""
        if self is Activation.RELU:
            return np.maximum(x, 0.0)
        if self is Activation.RELU6:
            return np.clip(x, 0.0, 6.0)
        return x

    @property
    def nonnegative(self) -> bool:
        return self is not Activation.NONE


@dataclass(frozen=True, eq=False)
class LayerQuant:
    """Fixed-point realisation of one chain layer (docs/fixed-point.md).

    Factor k multiplies its input (``in_formats[k]``) by integer weights in ``weight_formats[k]``
    and accumulates exactly at ``in.frac + weight.frac`` fractional bits in ``acc_widths[k]``
    signed bits. The last factor's accumulator also takes the bias (``bias_frac`` fractional
    bits, i.e. the accumulator's) and the activation; each accumulator is requantised into
    ``out_formats[k]`` (round half up, saturate).
    """

    in_format: Fixed
    weight_formats: tuple[Fixed, ...]
    out_formats: tuple[Fixed, ...]
    int_twiddle: np.ndarray  # int64, the chain's flat layout
    int_bias: np.ndarray  # int64 at bias_frac fractional bits
    acc_widths: tuple[int, ...] = ()

    @property
    def in_formats(self) -> tuple[Fixed, ...]:
        return (self.in_format, *self.out_formats[:-1])

    def acc_frac(self, k: int) -> int:
        return self.in_formats[k].frac + self.weight_formats[k].frac

    @property
    def bias_frac(self) -> int:
        return self.acc_frac(len(self.weight_formats) - 1)

    def shift(self, k: int) -> int:
        """Right shift from factor k's accumulator to its output format."""
        return self.acc_frac(k) - self.out_formats[k].frac


@dataclass(frozen=True, eq=False)
class ChainOp:
    """``y = act(W x + b)`` with ``W = B_N ... B_1`` a DeBut chain (dense: one factor).

    ``ranges`` (after calibration) is the largest absolute value seen at each factor's output on
    the calibration data, after the bias and activation for the last one.
    """

    name: str
    chain: Chain
    twiddle: np.ndarray  # float64
    bias: np.ndarray  # float64, zeros when the layer has none
    activation: Activation = Activation.NONE
    ranges: tuple[float, ...] | None = None
    quant: LayerQuant | None = None

    @property
    def in_features(self) -> int:
        return self.chain.in_features

    @property
    def out_features(self) -> int:
        return self.chain.out_features


@dataclass(frozen=True, eq=False)
class BatchNormOp:
    """Inference-time batch norm: ``(x - mean) / sqrt(var + eps) * weight + bias``."""

    name: str
    mean: np.ndarray
    var: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    eps: float

    @property
    def in_features(self) -> int:
        return len(self.mean)

    out_features = in_features


@dataclass(frozen=True, eq=False)
class ActivationOp:
    name: str
    kind: Activation
    features: int

    @property
    def in_features(self) -> int:
        return self.features

    out_features = in_features


Op = ChainOp | BatchNormOp | ActivationOp


@dataclass(frozen=True, eq=False)
class Graph:
    """A feed-forward network on flat feature vectors.

    ``input_range`` (after calibration) is the preprocessed input's largest absolute value and
    ``input_signed`` whether it ever goes negative; ``input_format`` follows from them.
    """

    in_features: int
    preprocessing: Preprocessing
    ops: tuple[Op, ...]
    input_range: float | None = None
    input_signed: bool = True
    input_format: Fixed | None = None

    @property
    def layers(self) -> tuple[ChainOp, ...]:
        return tuple(op for op in self.ops if isinstance(op, ChainOp))

    @property
    def out_features(self) -> int:
        return self.ops[-1].out_features if self.ops else self.in_features

    @property
    def output_format(self) -> Fixed | None:
        last = self.layers[-1] if self.layers else None
        return last.quant.out_formats[-1] if last and last.quant else None
