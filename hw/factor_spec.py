"""What one DeBut factor computes in fixed point, whatever stage runs it: its weights, formats,
shift, bias and activation, and the requantiser that every stage builds from them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth import Module, Signal, signed, unsigned

from debut.chain import Factor
from debut.fixed import Fixed, bits_for_range

__all__ = ["FactorSpec", "requantize", "value_shape"]


def value_shape(fmt: Fixed):
    """The Amaranth shape of one element in ``fmt``."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


@dataclass(frozen=True, eq=False)
class FactorSpec:
    """``y = sat(act(B x + bias + round) >> shift)`` for one DeBut factor ``B`` with integer
    ``weights`` (flat, in the factor's parameter order), bit-exact with
    :func:`compiler.golden.apply_factor` followed by the bias, the activation and
    :func:`debut.fixed.requantize`. ``acc_width`` is the accumulator's width (at least
    :attr:`acc_bits_needed`)."""

    factor: Factor
    weights: np.ndarray
    in_format: Fixed
    weight_format: Fixed
    out_format: Fixed
    shift: int
    acc_width: int
    bias: np.ndarray | None = None
    relu: bool = False
    rows: tuple[int, ...] = field(init=False, repr=False)
    cols: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        factor = self.factor
        if not isinstance(factor, Factor):
            raise ValueError(f"factor must be a Factor, not {factor!r}")
        for name in ("in_format", "weight_format", "out_format"):
            if not isinstance(getattr(self, name), Fixed):
                raise ValueError(f"{name} must be a Fixed, not {getattr(self, name)!r}")
        if not self.weight_format.signed:
            raise ValueError(f"weight_format must be signed, not {self.weight_format}")
        if not isinstance(self.shift, int) or isinstance(self.shift, bool):
            raise ValueError(f"shift must be an int, not {self.shift!r}")
        if not isinstance(self.relu, bool):
            raise ValueError(f"relu must be a bool, not {self.relu!r}")
        products = factor.p * factor.s
        weights = np.asarray(self.weights)
        if weights.shape != (products,) or not np.issubdtype(weights.dtype, np.integer):
            raise ValueError(
                f"weights must be {products} integers (shape ({products},)), "
                f"not {weights.dtype} of shape {weights.shape}"
            )
        wf = self.weight_format
        if weights.min() < wf.min_int or weights.max() > wf.max_int:
            raise ValueError(
                f"weights must lie in {wf.min_int}..{wf.max_int} ({wf}), "
                f"not {weights.min()}..{weights.max()}"
            )
        bias = np.zeros(factor.p, dtype=np.int64) if self.bias is None else np.asarray(self.bias)
        if bias.shape != (factor.p,) or not np.issubdtype(bias.dtype, np.integer):
            raise ValueError(
                f"bias must be {factor.p} integers (shape ({factor.p},)), "
                f"not {bias.dtype} of shape {bias.shape}"
            )
        object.__setattr__(self, "weights", weights.astype(np.int64))
        object.__setattr__(self, "bias", bias.astype(np.int64))
        rows, cols = factor.rows_cols()
        object.__setattr__(self, "rows", tuple(int(v) for v in rows))
        object.__setattr__(self, "cols", tuple(int(v) for v in cols))
        need = self.acc_bits_needed
        acc = self.acc_width
        if not isinstance(acc, int) or isinstance(acc, bool) or acc < need:
            raise ValueError(
                f"acc_width must be at least {need} for these weights, bias and formats, "
                f"not {acc!r}"
            )

    @property
    def round(self) -> int:
        """The round-half-up constant added before the shift."""
        return 1 << (self.shift - 1) if self.shift > 0 else 0

    @property
    def products(self) -> int:
        return self.factor.p * self.factor.s

    def init(self, row: int) -> int:
        """The accumulator's start value for output ``row``: its bias plus the rounding
        constant (which commutes with ReLU), so the requantiser is only shift, ReLU and
        saturation."""
        return int(self.bias[row]) + self.round

    @property
    def acc_bits_needed(self) -> int:
        """The accumulator width that holds every output's worst case over the input range, for
        these weights, bias and rounding constant."""
        x_lo, x_hi = self.in_format.min_int, self.in_format.max_int
        lo = [self.init(row) for row in range(self.factor.p)]
        hi = list(lo)
        for k, w in enumerate(self.weights.tolist()):
            i = self.rows[k]
            lo[i] += min(w * x_lo, w * x_hi)
            hi[i] += max(w * x_lo, w * x_hi)
        return bits_for_range(min(lo), max(hi))


def requantize(m: Module, value, *, shift: int, relu: bool, fmt: Fixed, name: str):
    """Shift, ReLU and saturation of an accumulator value into ``fmt`` (combinational).

    The bounds are ``hi = 2**k - 1`` and ``lo = 0`` or ``-2**k``, so both range checks are
    tests of the bits from ``k`` up (reductions, no comparators)."""
    lo = 0 if relu else fmt.min_int  # min_int <= 0
    hi = fmt.max_int
    k = hi.bit_length()
    shifted = value >> shift if shift > 0 else value << -shift
    v = Signal(signed(len(shifted)), name=f"{name}_shifted")
    m.d.comb += v.eq(shifted)
    sign, top = v[-1], v[k:]  # top includes the sign bit
    over = ~sign & top.any() if len(v) > k + 1 else 0
    if lo == 0:
        under = sign
    else:  # lo == -2**k
        under = sign & ~top.all() if len(v) > k + 1 else 0
    y = Signal(value_shape(fmt), name=name)
    with m.If(over):
        m.d.comb += y.eq(hi)
    with m.Elif(under):
        m.d.comb += y.eq(lo)
    with m.Else():
        m.d.comb += y.eq(v)
    return y
