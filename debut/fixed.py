"""Fixed-point formats and the integer operations the golden model and the RTL share.

A format ``Fixed(width, frac, signed)`` reads an integer ``n`` as the value ``n * 2**-frac``.
Requantisation is an arithmetic right shift with round half up (add ``2**(shift-1)``, then
shift) followed by saturation; a negative shift is an exact left shift (then saturation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Fixed", "bits_for_range", "requantize", "round_half_up"]

MIN_WIDTH, MAX_WIDTH = 2, 16
# the fractional bits a tensor's format may have: the manifest and the host link's PING reply
# carry them in one signed byte (docs/host-protocol.md)
MIN_FRAC, MAX_FRAC = -128, 127


@dataclass(frozen=True)
class Fixed:
    """A fixed-point format: ``width`` bits, ``frac`` fractional bits (may be negative or exceed
    the width), two's complement when ``signed``."""

    width: int
    frac: int
    signed: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or not 1 <= self.width <= 64:
            raise ValueError(f"width must be an int in 1..64, not {self.width!r}")
        if not isinstance(self.frac, int):
            raise ValueError(f"frac must be an int, not {self.frac!r}")

    @property
    def min_int(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        """Value of one unit in the last place."""
        return math.ldexp(1.0, -self.frac)

    @property
    def max_value(self) -> float:
        return self.max_int * self.lsb

    @property
    def min_value(self) -> float:
        return self.min_int * self.lsb

    def to_list(self) -> list:
        """``[width, frac, signed]`` for JSON."""
        return [self.width, self.frac, self.signed]

    @classmethod
    def from_list(cls, data) -> Fixed:
        width, frac, signed = data
        return cls(int(width), int(frac), bool(signed))

    @classmethod
    def for_range(cls, width: int, max_abs: float, signed: bool) -> Fixed:
        """The format of ``width`` bits with the most fractional bits whose range holds
        ``[-max_abs, max_abs]`` (signed) or ``[0, max_abs]`` (unsigned) without saturating."""
        if not math.isfinite(max_abs) or max_abs < 0:
            raise ValueError(f"max_abs must be finite and non-negative, not {max_abs!r}")
        top = (1 << (width - 1)) - 1 if signed else (1 << width) - 1
        if max_abs == 0 or top == 0:
            return cls(width, width - 1 if signed else width, signed)
        # largest frac with round(max_abs * 2**frac) <= top
        frac = math.floor(math.log2(top / max_abs))
        while math.floor(max_abs * 2.0**frac + 0.5) > top:
            frac -= 1
        while math.floor(max_abs * 2.0 ** (frac + 1) + 0.5) <= top:
            frac += 1
        return cls(width, frac, signed)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Round half up to the nearest representable integer, then saturate (int64)."""
        scaled = round_half_up(np.asarray(values, dtype=np.float64) * 2.0**self.frac)
        return np.clip(scaled, self.min_int, self.max_int).astype(np.int64)

    def saturations(self, values: np.ndarray) -> int:
        """How many values round outside this format's range."""
        scaled = round_half_up(np.asarray(values, dtype=np.float64) * 2.0**self.frac)
        return int(((scaled < self.min_int) | (scaled > self.max_int)).sum())

    def to_float(self, ints: np.ndarray) -> np.ndarray:
        return np.asarray(ints, dtype=np.float64) * self.lsb

    def __str__(self) -> str:
        kind = "s" if self.signed else "u"
        return f"{kind}{self.width}.{self.frac}"


def round_half_up(scaled: np.ndarray) -> np.ndarray:
    """``floor(scaled + 1/2)`` exactly: adding 0.5 in floating point can round first (it takes
    0.49999999999999994 to 1.0), the fractional part from ``modf`` is exact."""
    fraction, whole = np.modf(scaled)
    return whole + (fraction >= 0.5) - (fraction < -0.5)


def requantize(acc: np.ndarray, shift: int, out: Fixed) -> tuple[np.ndarray, int]:
    """Move integers from a scale with ``shift`` more fractional bits than ``out`` into ``out``:
    round half up and saturate. Returns the result and the number of saturated values."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift > 0:
        shifted = (acc + (1 << (shift - 1))) >> shift
    else:
        shifted = acc << (-shift)
    saturated = int(((shifted < out.min_int) | (shifted > out.max_int)).sum())
    return np.clip(shifted, out.min_int, out.max_int), saturated


def bits_for_range(low: int, high: int) -> int:
    """Width of the smallest two's-complement signed integer holding every value in
    ``[low, high]``."""
    if low > high:
        raise ValueError(f"low must be <= high, not {low} > {high}")
    width = 1
    while not (-(1 << (width - 1)) <= low and high <= (1 << (width - 1)) - 1):
        width += 1
    return width
