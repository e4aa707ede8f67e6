"""Chain generators: DeBut chains for any ``out x in`` within a budget, and the fixed butterfly.

Every chain made here follows the density rule of docs/chains.md (``t_1 = 1``,
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
import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from debut.chain import Chain, ChainShape, Factor
from debut.errors import ChainSearchError

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

# One step of the search: the factor, the state after it (R', B') and whether its width bulges.
_Step = tuple[Factor, int, int, bool]
# Dynamic programming of the default ranking: a state (R, B, bulge still due), a partial sum
# (parameters, factors) and its entry (largest factor, previous state and sum, last factor).
_State = tuple[int, int, bool]
_Sum = tuple[int, int]
_Entry = tuple[int, tuple[_State, _Sum] | None, Factor | None]


def chain_from_rs(r: Sequence[int], s: Sequence[int]) -> Chain:
    """The density-rule chain of the factor ratios ``r`` (output side) and ``s`` (input side).

    ``out_features = prod(r)``, ``in_features = prod(s)``; factor k is
    ``[nb_k r_k t_k, nb_k s_k t_k, r_k, s_k, t_k]`` with ``t_k = prod_{j<k} r_j`` and
    ``nb_k = prod_{j>k} s_j``. Only the 1x1 chain may have a factor with ``r = s = 1``.
    """
    r, s = list(r), list(s)
    if not r or len(r) != len(s):
        raise ValueError(f"r and s must be non-empty and of equal length, not {r!r} and {s!r}")
    pairs = []
    for k, (rk, sk) in enumerate(zip(r, s, strict=True)):
        pair = (_positive_int(f"r[{k}]", rk), _positive_int(f"s[{k}]", sk))
        if pair == (1, 1) and len(r) > 1:
            raise ValueError(f"factor {k} must not have r = s = 1 (a useless diagonal)")
        pairs.append(pair)
    return _chain(pairs)


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
    ``max_factors`` factors; each appears once, in a fixed depth-first order, larger first
    factors first.

    Branch and bound: a branch is cut as soon as its parameters plus the exact cheapest way to
    finish it exceed the budget, so the work grows with the number of chains yielded (about a
    microsecond each), which grows quickly with the size and the budget.
    """
    space = _Space.checked(out_features, in_features, shape, max_factors, min_width, max_width)
    return space.chains(_positive_int("max_params", max_params))


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
    better), but one extra factor is worth 2% of the budget and one unit of imbalance (the
    largest factor doing the mean's work once more) 5%.
    """
    peak = max(f.params for f in chain.factors)
    return _score(chain.params, len(chain), peak, _positive_int("budget", budget))


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
    """The best chain for ``out x in`` within a parameter budget, among those of
    :func:`search_chains` with the same limits.

    Give exactly one of ``max_params`` or ``compression``, the fraction of the dense layer's
    ``out * in`` parameters removed (0.85 leaves at most ``floor(0.15 * out * in)``).

    By default the chain with the highest :func:`default_score` wins; it depends only on a
    chain's parameters, factor count and largest factor, so it is found by dynamic programming
    over those, in about a second even for 512x4608 (ties are broken deterministically). A
    ``key`` (higher is better, the first chain found wins ties) is applied to every chain of the
    budget instead, which for a large layer and budget can be millions: lower ``max_factors``.

    Raises :class:`ChainSearchError` naming the smallest budget that works when none fits.
    """
    space = _Space.checked(out_features, in_features, shape, max_factors, min_width, max_width)
    if (max_params is None) == (compression is None):
        raise ValueError(
            "exactly one of max_params and compression must be given, "
            f"not max_params={max_params!r} and compression={compression!r}"
        )
    dense = space.out * space.inp
    if max_params is not None:
        budget = _positive_int("max_params", max_params)
    else:
        if (
            not isinstance(compression, numbers.Real)
            or isinstance(compression, bool)
            or not 0 <= compression < 1
        ):
            raise ValueError(f"compression must be a number in [0, 1), not {compression!r}")
        # round first so that 0.85 of 51,200 leaves 7,680 despite binary floating point
        budget = math.floor(round((1 - float(compression)) * dense, 6))
    smallest = space.minimum()
    if smallest > budget:
        highest = math.floor((1 - smallest / dense) * 10_000) / 10_000
        raise ChainSearchError(
            f"no {space.noun} for {space.out}x{space.inp} within {budget} params; "
            f"the smallest needs {smallest} "
            f"(use max_params >= {smallest} or compression <= {highest:.4f})"
        )
    if key is None:
        return space.best(budget)
    return max(space.chains(budget), key=key)


def butterfly_chain(out_features: int, in_features: int) -> Chain:
    """The fixed butterfly chain of Ailon et al. for ``out x in``, under the density rule.

    With ``2^k`` the largest power of two dividing both sizes: ``k`` factors with ``r = s = 2``
    and, unless ``out = in = 2^k``, one small dense factor ``r = out / 2^k``, ``s = in / 2^k``,
    placed first or last, whichever needs fewer parameters (first on a tie). For
    ``out = in = 2^n`` it is ``n`` factors ``[2^n, 2^n, 2, 2, 2^k]``, ``k = 0 .. n-1``.
    """
    out = _positive_int("out_features", out_features)
    inp = _positive_int("in_features", in_features)
    k = min(_twos(out), _twos(inp))
    pairs = [(2, 2)] * k
    rest = (out >> k, inp >> k)
    if rest == (1, 1):
        return _chain(pairs or [rest])
    first, last = _chain([rest, *pairs]), _chain([*pairs, rest])
    return first if first.params <= last.params else last


def _score(params: int, factors: int, peak: int, budget: int) -> float:
    imbalance = factors * peak / params
    return params / budget - FACTOR_WEIGHT * (factors - 1) - IMBALANCE_WEIGHT * (imbalance - 1)


class _Space:
    """The density-rule chains of one size under shape, width and length limits.

    A state ``(R, B)`` after some factors holds ``R = prod r`` so far and ``B = prod s`` still to
    come; the width there is ``R * B`` and the next factor ``(r, s)`` costs ``R * r * B``. The
    start is ``(1, in)``, the end ``(out, 1)``; every step raises R or lowers B.
    """

    def __init__(self, out: int, inp: int, shape: str, max_factors: int, lo: int, hi: int) -> None:
        self.out, self.inp = out, inp
        self.shape, self.lo, self.hi = shape, lo, hi
        self.asked_factors = max_factors
        # every factor but the 1x1 one takes at least one prime factor of out or in
        self.max_factors = min(max_factors, max(1, _primes(out) + _primes(inp)))
        self.limit = max(out, inp)
        self.noun = "chain" if shape == "any" else f"{shape} chain"
        out_divs, in_divs = _divisors(out), _divisors(inp)
        self._out_divs = {a: [d for d in out_divs if a % d == 0] for a in out_divs}
        self._in_divs = {b: [d for d in in_divs if b % d == 0] for b in in_divs}
        self._steps: dict[tuple[int, int], list[_Step]] = {}
        self._rest: dict[tuple[int, int, int, bool], float] = {}

    @classmethod
    def checked(
        cls,
        out_features: object,
        in_features: object,
        shape: object,
        max_factors: object,
        min_width: object,
        max_width: object,
    ) -> _Space:
        out = _positive_int("out_features", out_features)
        inp = _positive_int("in_features", in_features)
        if isinstance(shape, ChainShape):
            shape = shape.value
        if shape not in _SHAPES:
            raise ValueError(f"shape must be 'monotonic', 'bulging' or 'any', not {shape!r}")
        count = _positive_int("max_factors", max_factors)
        limit = max(out, inp)
        lo = min(out, inp) if min_width is None else _positive_int("min_width", min_width)
        hi = BULGE_FACTOR * limit if max_width is None else _positive_int("max_width", max_width)
        if shape == "monotonic":
            hi = min(hi, limit)
        return cls(out, inp, str(shape), count, lo, hi)

    def start(self) -> tuple[int, int, int, bool]:
        """The search's first state, factors left and whether a bulge is due."""
        return 1, self.inp, self.max_factors, self.shape == "bulging"

    def done(self, big_r: int, big_b: int) -> bool:
        return big_r == self.out and big_b == 1

    def steps(self, big_r: int, big_b: int) -> list[_Step]:
        """Every factor allowed from state ``(R, B)``, larger factors first."""
        found = self._steps.get((big_r, big_b))
        if found is None:
            found = []
            for r in self._out_divs[self.out // big_r]:
                for s in self._in_divs[big_b]:
                    if r == s == 1 and (self.out, self.inp) != (1, 1):
                        continue
                    nr, nb = big_r * r, big_b // s
                    width = nr * nb
                    if not self.done(nr, nb) and not self.lo <= width <= self.hi:
                        continue
                    # t = R and nb = B' make p = R' * B' and q = R * B
                    factor = Factor(width, big_r * big_b, r, s, big_r)
                    found.append((factor, nr, nb, width > self.limit))
            found.sort(key=lambda step: -step[0].params)
            self._steps[big_r, big_b] = found
        return found

    def rest(self, big_r: int, big_b: int, left: int, need_bulge: bool) -> float:
        """Fewest parameters to finish from state ``(R, B)`` in at most ``left`` factors
        (``inf`` when impossible); ``need_bulge``: a width above ``max(in, out)`` is still due."""
        memo = (big_r, big_b, left, need_bulge)
        best = self._rest.get(memo)
        if best is None:
            best = math.inf
            # the 1x1 start is also the end, but its chain needs its one factor
            if self.done(big_r, big_b) and left < self.max_factors:
                best = math.inf if need_bulge else 0
            elif left > 0:
                for factor, nr, nb, bulges in self.steps(big_r, big_b):
                    after = self.rest(nr, nb, left - 1, need_bulge and not bulges)
                    best = min(best, factor.params + after)
            self._rest[memo] = best
        return best

    def minimum(self) -> int:
        best = self.rest(*self.start())
        if best == math.inf:
            raise ChainSearchError(
                f"no {self.noun} for {self.out}x{self.inp} has at most {self.asked_factors} "
                f"factors and intermediate widths in [{self.lo}, {self.hi}] "
                "(allow more factors or a wider range of widths)"
            )
        return int(best)

    def chains(self, budget: int) -> Iterator[Chain]:
        """Depth-first walk (an explicit stack of step iterators) that cuts a branch when its
        parameters plus the cheapest way to finish it exceed ``budget``."""
        big_r, big_b, left, need = self.start()
        if self.rest(big_r, big_b, left, need) > budget:
            return
        path: list[Factor] = []
        stack = [(iter(self.steps(big_r, big_b)), left - 1, need, 0)]
        while stack:
            steps, left, need, spent = stack[-1]
            for factor, nr, nb, bulges in steps:
                total = spent + factor.params
                still = need and not bulges
                if total + self.rest(nr, nb, left, still) > budget:
                    continue
                if self.done(nr, nb):
                    yield Chain((*path, factor))
                    continue
                path.append(factor)
                stack.append((iter(self.steps(nr, nb)), left - 1, still, total))
                break
            else:
                stack.pop()
                if path:
                    path.pop()

    def best(self, budget: int) -> Chain:
        """The chain within ``budget`` with the highest :func:`default_score`.

        The score depends only on (parameters, factors, largest factor), so a forward pass over
        the states keeps, per state and (parameters so far, factors so far), the smallest
        largest factor and one way to reach it. States are visited in an order every step
        follows: R rising, then B falling. The caller has checked that a chain fits.
        """
        if (self.out, self.inp) == (1, 1):
            return _chain([(1, 1)])
        big_r, big_b, _, need = self.start()
        table: dict[_State, dict[_Sum, _Entry]] = {(big_r, big_b, need): {(0, 0): (0, None, None)}}
        states = [(a, b, n) for a in self._out_divs for b in self._in_divs for n in (False, True)]
        for state in sorted(states, key=lambda st: (st[0], -st[1], st[2])):
            big_r, big_b, need = state
            for (spent, count), (peak, _, _) in table.get(state, {}).items():
                left = self.max_factors - count - 1
                for factor, nr, nb, bulges in self.steps(big_r, big_b):
                    total, still = spent + factor.params, need and not bulges
                    if total + self.rest(nr, nb, left, still) > budget:
                        continue
                    after = table.setdefault((nr, nb, still), {})
                    top = max(peak, factor.params)
                    known = after.get((total, count + 1))
                    if known is None or top < known[0]:
                        after[total, count + 1] = (top, (state, (spent, count)), factor)
        ends = table[self.out, 1, False]
        entry = max(ends.items(), key=lambda e: _score(*e[0], e[1][0], budget))[1]
        factors = []
        while entry[1] is not None:
            _, (state, key), factor = entry
            factors.append(factor)
            entry = table[state][key]
        return Chain(tuple(reversed(factors)))


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


def _primes(n: int) -> int:
    """Number of prime factors of ``n``, counted with multiplicity."""
    count, p = 0, 2
    while p * p <= n:
        while n % p == 0:
            n //= p
            count += 1
        p += 1
    return count + (n > 1)


def _twos(n: int) -> int:
    """Exponent of the largest power of two dividing ``n``."""
    return (n & -n).bit_length() - 1


def _positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` when it is a positive integer (numpy's included)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)
