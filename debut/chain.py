"""DeBut factor chains: shapes, validation, counts, supports and dense materialisation.

A factor ``R(p, q; r, s, t)`` is a ``p x q`` block-diagonal matrix of ``nb = p/(r*t) = q/(s*t)``
blocks, each an ``r x s`` grid of ``t x t`` diagonal matrices. A chain lists its factors in
application order (input side first): ``W = B_N ... B_1``.

The parameters of a whole chain are one flat vector (the reference code's ``twiddle``): factor k
owns a slice of length ``p_k * s_k`` viewed as ``(nb, t, r, s)``; element ``theta[b, d, a, c]``
sits at ``W_k[b*r*t + a*t + d, b*s*t + c*t + d]``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from debut.errors import ChainError

__all__ = ["Chain", "ChainShape", "Factor"]


class ChainShape(enum.Enum):
    """Whether any intermediate width exceeds max(in, out)."""

    MONOTONIC = "monotonic"
    BULGING = "bulging"


@dataclass(frozen=True)
class Factor:
    """One DeBut factor ``R(p, q; r, s, t)``; construct through :meth:`Chain.from_list`
    or :meth:`Factor.checked` to have it validated."""

    p: int
    q: int
    r: int
    s: int
    t: int

    @classmethod
    def checked(cls, spec: Sequence[int], index: int = 0) -> Factor:
        """Build a factor from ``[p, q, r, s, t]``, naming ``index`` in any error."""
        name = f"factor {index}"
        if isinstance(spec, np.ndarray) and spec.ndim == 1:
            spec = spec.tolist()
        values = list(spec) if isinstance(spec, (list, tuple)) else spec
        if (
            not isinstance(values, list)
            or len(values) != 5
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
        ):
            raise ChainError(f"{name} must be 5 integers [p, q, r, s, t], not {spec!r}")
        p, q, r, s, t = (int(v) for v in values)
        if min(p, q, r, s, t) < 1:
            raise ChainError(f"{name} {[p, q, r, s, t]}: every entry must be positive")
        if p % (r * t):
            raise ChainError(f"{name} {[p, q, r, s, t]}: p={p} must be a multiple of r*t={r * t}")
        if q % (s * t):
            raise ChainError(f"{name} {[p, q, r, s, t]}: q={q} must be a multiple of s*t={s * t}")
        if p // (r * t) != q // (s * t):
            raise ChainError(
                f"{name} {[p, q, r, s, t]}: block counts differ, "
                f"p/(r*t)={p // (r * t)} but q/(s*t)={q // (s * t)}"
            )
        return cls(p, q, r, s, t)

    @property
    def nb(self) -> int:
        """Number of diagonal blocks."""
        return self.p // (self.r * self.t)

    @property
    def params(self) -> int:
        """Non-zero entries, equal to the multiply-accumulates per input vector."""
        return self.p * self.s

    @property
    def groups(self) -> int:
        """Independent r x s mat-vecs per vector (one per block and diagonal position)."""
        return self.nb * self.t

    def as_list(self) -> list[int]:
        return [self.p, self.q, self.r, self.s, self.t]

    def rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of every parameter, in the flat ``(nb, t, r, s)`` order."""
        b, d, a, c = np.meshgrid(
            np.arange(self.nb),
            np.arange(self.t),
            np.arange(self.r),
            np.arange(self.s),
            indexing="ij",
        )
        rows = b * self.r * self.t + a * self.t + d
        cols = b * self.s * self.t + c * self.t + d
        return rows.reshape(-1), cols.reshape(-1)

    def support(self) -> np.ndarray:
        """Boolean ``p x q`` mask of the entries that may be non-zero."""
        mask = np.zeros((self.p, self.q), dtype=bool)
        rows, cols = self.rows_cols()
        mask[rows, cols] = True
        return mask

    def materialize(self, theta: np.ndarray) -> np.ndarray:
        """The dense ``p x q`` matrix of this factor from its ``p*s`` parameters."""
        theta = np.asarray(theta)
        if theta.shape != (self.params,):
            raise ChainError(
                f"factor {self.as_list()} needs {self.params} parameters, not shape {theta.shape}"
            )
        dense = np.zeros((self.p, self.q), dtype=theta.dtype)
        rows, cols = self.rows_cols()
        dense[rows, cols] = theta
        return dense


@dataclass(frozen=True)
class Chain:
    """A validated DeBut chain, factors in application order (input side first)."""

    factors: tuple[Factor, ...]

    @classmethod
    def from_list(
        cls,
        spec: Chain | Sequence[Sequence[int]],
        in_features: int | None = None,
        out_features: int | None = None,
    ) -> Chain:
        """Validate ``[[p, q, r, s, t], ...]`` (or a :class:`Chain`) and, where given, its
        input and output widths. Errors name the offending factor and the rule it breaks."""
        if isinstance(spec, Chain):
            factors = spec.factors
        else:
            if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence) or not spec:
                raise ChainError(f"chain must be a non-empty list of [p, q, r, s, t], not {spec!r}")
            factors = tuple(Factor.checked(f, k) for k, f in enumerate(spec))
        for k in range(len(factors) - 1):
            if factors[k + 1].q != factors[k].p:
                raise ChainError(
                    f"factor {k + 1} {factors[k + 1].as_list()}: q={factors[k + 1].q} must equal "
                    f"p={factors[k].p} of factor {k}"
                )
        chain = cls(tuple(factors))
        if in_features is not None and chain.in_features != in_features:
            raise ChainError(
                f"factor 0 {factors[0].as_list()}: q={chain.in_features} must equal "
                f"in_features={in_features}"
            )
        if out_features is not None and chain.out_features != out_features:
            raise ChainError(
                f"factor {len(factors) - 1} {factors[-1].as_list()}: p={chain.out_features} must "
                f"equal out_features={out_features}"
            )
        return chain

    @classmethod
    def dense(cls, out_features: int, in_features: int) -> Chain:
        """The one-factor chain ``[p, q, p, q, 1]`` of an ordinary dense matrix."""
        return cls.from_list([[out_features, in_features, out_features, in_features, 1]])

    def __len__(self) -> int:
        return len(self.factors)

    def __iter__(self):
        return iter(self.factors)

    def __str__(self) -> str:
        return " ".join(str(f.as_list()).replace(" ", "") for f in self.factors)

    def as_list(self) -> list[list[int]]:
        return [f.as_list() for f in self.factors]

    @property
    def in_features(self) -> int:
        return self.factors[0].q

    @property
    def out_features(self) -> int:
        return self.factors[-1].p

    @property
    def params(self) -> int:
        """Length of the flat parameter vector (``twiddle``), excluding bias."""
        return sum(f.params for f in self.factors)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per input vector."""
        return self.params

    @property
    def dense_params(self) -> int:
        return self.in_features * self.out_features

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each factor's slice in the flat parameter vector, plus the total."""
        out = [0]
        for f in self.factors:
            out.append(out[-1] + f.params)
        return tuple(out)

    @property
    def widths(self) -> tuple[int, ...]:
        """Vector widths along the chain: in_features, then each factor's output."""
        return (self.in_features, *(f.p for f in self.factors))

    @property
    def shape(self) -> ChainShape:
        limit = max(self.in_features, self.out_features)
        if any(w > limit for w in self.widths[1:-1]):
            return ChainShape.BULGING
        return ChainShape.MONOTONIC

    @cached_property
    def _support_product(self) -> np.ndarray:
        prod = np.eye(self.in_features, dtype=np.int64)
        for f in self.factors:
            prod = np.minimum(f.support().astype(np.int64) @ prod, 1)
        return prod

    def is_dense(self) -> bool:
        """True when the product of the factors' supports has no structural zeros."""
        return bool(self._support_product.all())

    def structural_zeros(self) -> int:
        """Number of entries of ``W`` that are zero whatever the parameters."""
        return int((self._support_product == 0).sum())

    def split(self, theta: np.ndarray) -> list[np.ndarray]:
        """Cut a flat parameter vector into one slice per factor."""
        theta = np.asarray(theta)
        if theta.shape != (self.params,):
            raise ChainError(
                f"chain {self} needs {self.params} parameters, not shape {theta.shape}"
            )
        off = self.offsets
        return [theta[off[k] : off[k + 1]] for k in range(len(self.factors))]

    def factor_matrices(self, theta: np.ndarray) -> list[np.ndarray]:
        """Dense matrix of every factor, application order."""
        return [f.materialize(th) for f, th in zip(self.factors, self.split(theta), strict=True)]

    def materialize(self, theta: np.ndarray) -> np.ndarray:
        """The dense ``out x in`` matrix ``B_N ... B_1``."""
        mats = self.factor_matrices(theta)
        out = mats[0]
        for m in mats[1:]:
            out = m @ out
        return out

    def describe(self) -> str:
        """One line: factors, parameters, compression and shape."""
        ratio = 1 - self.params / self.dense_params
        return (
            f"{self} ({len(self)} factors, {self.params} params, "
            f"{ratio:.1%} fewer than dense, {self.shape.value})"
        )
