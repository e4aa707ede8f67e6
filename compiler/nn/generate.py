"""Chain generators: DeBut chains for any ``out x in`` within a budget, and the fixed butterfly.

Every chain made here follows the density rule of DESIGN.md section 3 (``t_1 = 1``,
``t_{k+1} = r_k t_k``, last factor a single block), so it is dense and fixed by two sequences
``r_1..r_N`` and ``s_1..s_N`` with ``prod(r) = out_features`` and ``prod(s) = in_features``; no
factor has ``r_k = s_k = 1`` (a useless diagonal). Then ``t_k = prod_{j<k} r_j``,
``nb_k = prod_{j>k} s_j``, factor k has ``t_k r_k prod_{j>=k} s_j`` parameters (= MACs), and the
width after it is ``(prod_{j<=k} r_j)(prod_{j>k} s_j)``. No padding: the first factor's q is
always ``in_features`` and the last factor's p ``out_features``.

Widths: a *monotonic* chain has no intermediate width above ``max(in, out)``, a *bulging* one has
at least one. Intermediate widths are also kept at or above ``min_width``, by default
``min(in, out)``: a narrower width is a bottleneck that caps the rank of the product (the chain
``[1,13,1,13,1] [7,1,7,1,1]`` is structurally dense but has rank 1). Pass ``min_width=1`` for the
whole rule-conforming space.

Sizes are written ``out x in`` (the weight matrix's shape), as in ``128x400`` for LeNet's FC1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from compiler.errors import ChainSearchError
from compiler.nn.chain import Chain, ChainShape, Factor

__all__ = [
    "DEFAULT_MAX_FACTORS",
    "butterfly_chain",
    "chain_from_rs",
    "default_score",
    "hardware_cost",
    "min_chain_params",
    "search_chains",
    "suggest_chain",
]

Shape = Literal["monotonic", "bulging", "any"]

DEFAULT_MAX_FACTORS = 8
"""Longest chain searched unless the caller says otherwise (one pipeline stage per factor)."""

BULGE_FACTOR = 4
"""Default widest intermediate width of bulging chains, as a multiple of ``max(in, out)``."""

FACTOR_WEIGHT = 0.02
"""Default ranking: what one extra factor costs, as a fraction of the budget."""

IMBALANCE_WEIGHT = 0.05
"""Default ranking: what one unit of MAC imbalance costs, as a fraction of the budget."""

_SHAPES = ("monotonic", "bulging", "any")

_Viable = Callable[[int, int, int, int, int], bool]
"""``viable(factors, params, largest factor, cheapest finish, factors left)`` of a partial
chain: False cuts the branch."""


def chain_from_rs(r: Sequence[int], s: Sequence[int]) -> Chain:
    """The density-rule chain of the factor ratios ``r`` (output side) and ``s`` (input side).

    ``out_features = prod(r)``, ``in_features = prod(s)``; factor k is
    ``[nb_k r_k t_k, nb_k s_k t_k, r_k, s_k, t_k]`` with ``t_k = prod_{j<k} r_j`` and
    ``nb_k = prod_{j>k} s_j``.
    """
    r, s = list(r), list(s)
    if not r or len(r) != len(s):
        raise ValueError(f"r and s must be non-empty and of equal length, not {r!r} and {s!r}")
    for k, (rk, sk) in enumerate(zip(r, s, strict=True)):
        for name, v in (("r", rk), ("s", sk)):
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name}[{k}] must be a positive integer, not {v!r}")
        if rk == sk == 1:
            raise ValueError(f"factor {k} must not have r = s = 1 (a useless diagonal)")
    return _chain(list(zip((int(v) for v in r), (int(v) for v in s), strict=True)))


def search_chains(
    out_features: int,
    in_features: int,
    *,
    max_params: int,
    shape: Shape | ChainShape = "monotonic",
    max_factors: int = DEFAULT_MAX_FACTORS,
    min_width: int | None = None,
    max_width: int | None = None,
) -> Iterator[Chain]:
    """Every density-rule chain for ``out x in`` with at most ``max_params`` parameters.

    ``shape`` is ``"monotonic"``, ``"bulging"`` (only chains that really bulge) or ``"any"``.
    Intermediate widths lie in ``[min_width, max_width]``: ``min_width`` defaults to
    ``min(in, out)``; ``max_width`` defaults to ``max(in, out)`` for monotonic chains (a larger
    value does not widen them) and to ``4 * max(in, out)`` otherwise. Chains have 1 to
    ``max_factors`` factors, each appears once, in a fixed (depth-first) order.

    Branch and bound: a branch is cut as soon as its parameters plus the exact cheapest way to
    finish it exceed the budget, so the work grows with the number of chains yielded.
    """
    space = _Space.checked(out_features, in_features, shape, max_factors, min_width, max_width)
    _check_positive_int("max_params", max_params)
    return space.chains(max_params)


def min_chain_params(
    out_features: int,
    in_features: int,
    *,
    shape: Shape | ChainShape = "monotonic",
    max_factors: int = DEFAULT_MAX_FACTORS,
    min_width: int | None = None,
    max_width: int | None = None,
) -> int:
    """The fewest parameters of any chain :func:`search_chains` can yield with these limits.

    Raises :class:`ChainSearchError` when no chain meets the shape and width limits at all.
    """
    space = _Space.checked(out_features, in_features, shape, max_factors, min_width, max_width)
    return space.minimum()


def hardware_cost(chain: Chain) -> int:
    """Multiplier-cycles per input vector when the chain folds onto a pipeline of one stage per
    factor, every stage with the same number of multipliers: ``len(chain) * max factor MACs``.

    The slowest (largest) stage sets the initiation interval, so the others idle for the
    difference. It equals ``chain.macs`` for perfectly balanced factors and grows with imbalance;
    ``hardware_cost(chain) / chain.macs`` (from 1 to ``len(chain)``) is the MAC imbalance.
    """
    return len(chain) * max(f.params for f in chain.factors)


def default_score(chain: Chain, budget: int) -> float:
    """The default ranking of :func:`suggest_chain` (higher is better).

    ``params / budget - FACTOR_WEIGHT * (factors - 1) - IMBALANCE_WEIGHT * (imbalance - 1)``
    with ``imbalance = hardware_cost(chain) / chain.params``: use the budget (more parameters fit
    better), but one extra factor is worth giving up 2% of the budget and one unit of imbalance
    (the largest factor doing its share plus the mean) 5%.
    """
    imbalance = hardware_cost(chain) / chain.params
    return (
        chain.params / budget
        - FACTOR_WEIGHT * (len(chain) - 1)
        - IMBALANCE_WEIGHT * (imbalance - 1)
    )


def suggest_chain(
    out_features: int,
    in_features: int,
    *,
    max_params: int | None = None,
    compression: float | None = None,
    shape: Shape | ChainShape = "monotonic",
    max_factors: int = DEFAULT_MAX_FACTORS,
    min_width: int | None = None,
    max_width: int | None = None,
    key: Callable[[Chain], float] | None = None,
) -> Chain:
    """The best chain for ``out x in`` within a parameter budget.

    Give exactly one of ``max_params`` or ``compression``, the fraction of the dense layer's
    ``out * in`` parameters removed (0.85 leaves at most ``floor(0.15 * out * in)``). Among the
    chains of :func:`search_chains` the one with the highest ``key(chain)`` wins (the first found
    on ties); ``key`` defaults to :func:`default_score` with this budget.

    Raises :class:`ChainSearchError` naming the smallest budget that works when none fits.
    """
    space = _Space.checked(out_features, in_features, shape, max_factors, min_width, max_width)
    if (max_params is None) == (compression is None):
        raise ValueError(
            "exactly one of max_params and compression must be given, "
            f"not max_params={max_params!r} and compression={compression!r}"
        )
    dense = out_features * in_features
    if max_params is not None:
        _check_positive_int("max_params", max_params)
        budget = max_params
    else:
        if (
            not isinstance(compression, (int, float))
            or isinstance(compression, bool)
            or not 0 <= compression < 1
        ):
            raise ValueError(f"compression must be a number in [0, 1), not {compression!r}")
        # round first so that 0.85 of 51,200 is 7,680 despite binary floating point
        budget = math.floor(round((1 - compression) * dense, 6))
    smallest = space.minimum()
    if smallest > budget:
        highest = math.floor((1 - smallest / dense) * 10_000) / 10_000
        raise ChainSearchError(
            f"no {space.noun} for {out_features}x{in_features} within {budget} params; "
            f"the smallest needs {smallest} "
            f"(use max_params >= {smallest} or compression <= {highest:.4f})"
        )
    if key is None:
        return _best_by_default_score(space, budget)
    return max(space.chains(budget), key=key)


def butterfly_chain(out_features: int, in_features: int) -> Chain:
    """The fixed butterfly chain of Ailon et al. for ``out x in``, under the density rule.

    With ``2^k`` the largest power of two dividing both sizes: ``k`` factors with ``r = s = 2``
    and, unless ``out = in = 2^k``, one small dense factor ``r = out / 2^k``, ``s = in / 2^k``,
    placed first or last, whichever needs fewer parameters (first on a tie). For
    ``out = in = 2^n`` it is ``n`` factors ``[2^n, 2^n, 2, 2, 2^k]``, ``k = 0 .. n-1``.
    """
    _check_positive_int("out_features", out_features)
    _check_positive_int("in_features", in_features)
    k = min(_twos(out_features), _twos(in_features))
    pairs = [(2, 2)] * k
    rest = (out_features >> k, in_features >> k)
    if rest == (1, 1):
        return _chain(pairs)
    first, last = _chain([rest, *pairs]), _chain([*pairs, rest])
    return first if first.params <= last.params else last


class _Space:
    """The density-rule chains of one size under shape, width and length limits.

    A state ``(R, B)`` after some factors holds ``R = prod r`` so far and ``B = prod s`` still to
    come; the width there is ``R * B`` and the next factor ``(r, s)`` costs ``R * r * B``.
    """

    def __init__(self, out: int, inp: int, shape: str, max_factors: int, lo: int, hi: int) -> None:
        self.out, self.inp = out, inp
        self.shape, self.max_factors, self.lo, self.hi = shape, max_factors, lo, hi
        self.limit = max(out, inp)
        self.noun = "chain" if shape == "any" else f"{shape} chain"
        out_divs, in_divs = _divisors(out), _divisors(inp)
        self._out_divs = {a: [d for d in out_divs if a % d == 0] for a in out_divs}
        self._in_divs = {b: [d for d in in_divs if b % d == 0] for b in in_divs}
        self._steps: dict[tuple[int, int], list[tuple[Factor, int, int, bool]]] = {}
        self._rest: dict[tuple[int, int, int, bool], float] = {}

    @classmethod
    def checked(
        cls,
        out: int,
        inp: int,
        shape: object,
        max_factors: int,
        min_width: int | None,
        max_width: int | None,
    ) -> _Space:
        _check_positive_int("out_features", out)
        _check_positive_int("in_features", inp)
        if isinstance(shape, ChainShape):
            shape = shape.value
        if shape not in _SHAPES:
            raise ValueError(f"shape must be 'monotonic', 'bulging' or 'any', not {shape!r}")
        _check_positive_int("max_factors", max_factors)
        if min_width is not None:
            _check_positive_int("min_width", min_width)
        if max_width is not None:
            _check_positive_int("max_width", max_width)
        limit = max(out, inp)
        lo = min(out, inp) if min_width is None else min_width
        hi = BULGE_FACTOR * limit if max_width is None else max_width
        if shape == "monotonic":
            hi = min(hi, limit)
        return cls(out, inp, str(shape), max_factors, lo, hi)

    def steps(self, big_r: int, big_b: int) -> list[tuple[Factor, int, int, bool]]:
        """``(factor, R', B', bulges)`` for every factor allowed from state ``(R, B)``."""
        found = self._steps.get((big_r, big_b))
        if found is None:
            found = []
            for r in self._out_divs[self.out // big_r]:
                for s in self._in_divs[big_b]:
                    if r == s == 1:
                        continue
                    nr, nb = big_r * r, big_b // s
                    width = nr * nb
                    final = nr == self.out and nb == 1
                    if not final and not self.lo <= width <= self.hi:
                        continue
                    # t = R and nb = B' make p = R' * B' and q = R * B
                    factor = Factor(width, big_r * big_b, r, s, big_r)
                    found.append((factor, nr, nb, width > self.limit))
            found.sort(key=lambda step: -step[0].params)  # larger factors first
            self._steps[big_r, big_b] = found
        return found

    def rest(self, big_r: int, big_b: int, left: int, need_bulge: bool) -> float:
        """Fewest parameters to finish from state ``(R, B)`` in at most ``left`` factors
        (``inf`` when impossible); ``need_bulge``: a width above ``max(in, out)`` is still due."""
        if big_r == self.out and big_b == 1:
            return math.inf if need_bulge else 0
        if left == 0:
            return math.inf
        memo = (big_r, big_b, left, need_bulge)
        best = self._rest.get(memo)
        if best is None:
            best = math.inf
            for factor, nr, nb, bulges in self.steps(big_r, big_b):
                after = self.rest(nr, nb, left - 1, need_bulge and not bulges)
                best = min(best, factor.params + after)
            self._rest[memo] = best
        return best

    def minimum(self) -> int:
        best = self.rest(1, self.inp, self.max_factors, self.shape == "bulging")
        if best == math.inf:
            raise ChainSearchError(
                f"no {self.noun} for {self.out}x{self.inp} has at most {self.max_factors} factors "
                f"and intermediate widths in [{self.lo}, {self.hi}] "
                "(allow more factors or a wider range of widths)"
            )
        return int(best)

    def chains(self, budget: int, viable: _Viable | None = None) -> Iterator[Chain]:
        """Depth-first walk (an explicit stack of step iterators), larger factors first, that
        cuts a branch when its parameters plus the cheapest way to finish exceed ``budget`` or
        when ``viable(factors, params, largest factor, cheapest finish, factors left)`` says no.
        """
        need = self.shape == "bulging"
        if self.rest(1, self.inp, self.max_factors, need) > budget:
            return
        path: list[Factor] = []
        stack = [(iter(self.steps(1, self.inp)), self.max_factors - 1, need, 0, 0)]
        while stack:
            steps, left, need, spent, peak = stack[-1]
            for factor, nr, nb, bulges in steps:
                total = spent + factor.params
                still = need and not bulges
                lo = self.rest(nr, nb, left, still)
                if total + lo > budget:
                    continue
                if nr == self.out and nb == 1:
                    yield Chain((*path, factor))
                    continue
                top = max(peak, factor.params)
                if viable is not None and not viable(len(path) + 1, total, top, int(lo), left):
                    continue
                path.append(factor)
                stack.append((iter(self.steps(nr, nb)), left - 1, still, total, top))
                break
            else:
                stack.pop()
                if path:
                    path.pop()


def _best_by_default_score(space: _Space, budget: int) -> Chain:
    """The chain of ``space`` within ``budget`` with the highest :func:`default_score` (first
    found on ties), by branch and bound on an upper bound of the score.

    A partial chain of ``n`` factors, largest ``peak``, finished by ``j`` more factors costing at
    least ``lo`` ends with ``n + j`` factors, a largest factor of at least ``max(peak, lo / j)``
    and at most ``budget`` parameters: its fill is at most 1 and its imbalance at least
    ``(n + j) * max(peak, lo / j) / budget`` (and at least 1).
    """
    incumbent, winner = -math.inf, None

    def viable(n: int, spent: int, peak: int, lo: int, left: int) -> bool:
        for j in range(1, left + 1):
            imbalance = max(1.0, (n + j) * max(peak, lo / j) / budget)
            bound = 1 - FACTOR_WEIGHT * (n + j - 1) - IMBALANCE_WEIGHT * (imbalance - 1)
            if bound >= incumbent - 1e-9:  # slack for rounding: never cut a true tie or better
                return True
        return False

    for chain in space.chains(budget, viable):
        score = default_score(chain, budget)
        if score > incumbent:
            incumbent, winner = score, chain
    assert winner is not None, "suggest_chain checked the budget against the minimum"
    return winner


def _chain(pairs: Sequence[tuple[int, int]]) -> Chain:
    """Build the density-rule chain of ``(r_k, s_k)`` pairs, valid by construction."""
    nb = math.prod(s for _, s in pairs)
    t = 1
    factors = []
    for r, s in pairs:
        nb //= s
        factors.append(Factor(nb * r * t, nb * s * t, r, s, t))
        t *= r
    return Chain(tuple(factors))


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})


def _twos(n: int) -> int:
    """Exponent of the largest power of two dividing ``n``."""
    return (n & -n).bit_length() - 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive_int(name: str, value: object) -> None:
    if not _is_int(value) or value < 1:  # type: ignore[operator]
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
