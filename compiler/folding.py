"""Folding: which factors each pipeline stage runs and how many multipliers it gets, from a
budget or a target II.

A factor stage of ``macs`` products per vector with ``m`` multipliers takes ``ceil(macs / m)``
cycles; the pipeline's initiation interval (II) is its slowest stage's. For a budget of at least
one multiplier per factor, every factor is a stage of its own and the compiler takes the fastest
II whose multipliers fit (the budget is there to be used), giving each stage the fewest
multipliers that meet that II. A smaller budget cuts the chain of factors into that many runs of
consecutive factors, each a shared stage on one multiplier (``hw.shared_stage``): its steps are
its factors' products and ``HAZARD_BUBBLES`` idle steps between them, and the cut minimises the
longest run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from debut.errors import FitError
from hw.shared_stage import HAZARD_BUBBLES, INTERVAL_OVERHEAD

# a shared stage's cycles per vector past its steps (it holds one vector at a time)
SHARED_OVERHEAD = INTERVAL_OVERHEAD

__all__ = ["Folding", "fold"]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Folding:
    macs: tuple[int, ...]  # per factor, per vector
    multipliers: tuple[int, ...]  # per stage
    groups: tuple[tuple[int, ...], ...] = ()  # per stage, its factors (default: one each)

    def __post_init__(self) -> None:
        if not self.groups:
            object.__setattr__(self, "groups", tuple((k,) for k in range(len(self.macs))))

    @property
    def stage_ii(self) -> tuple[int, ...]:
        """Cycles per vector of each stage: a factor stage's issue steps, a shared stage's
        steps and ``SHARED_OVERHEAD`` (it holds one vector at a time)."""
        return tuple(
            _ceil_div(self.macs[g[0]], m)
            if len(g) == 1
            else _run_steps(self.macs, g) + SHARED_OVERHEAD
            for g, m in zip(self.groups, self.multipliers, strict=True)
        )

    @property
    def ii(self) -> int:
        return max(self.stage_ii)

    @property
    def total_multipliers(self) -> int:
        return sum(self.multipliers)

    @property
    def efficiency(self) -> float:
        """Useful MACs per cycle per multiplier instantiated (1.0 is the physical limit)."""
        return sum(self.macs) / (self.ii * self.total_multipliers)


def _run_steps(macs: Sequence[int], group: Sequence[int]) -> int:
    """Steps of a shared stage running the factors ``group``."""
    return sum(macs[k] for k in group) + HAZARD_BUBBLES * (len(group) - 1)


def _fewest(macs: Sequence[int], bound: int) -> tuple[int, list[tuple[int, ...]], list[int]]:
    """The fewest multipliers for stages of at most ``bound`` cycles: each factor a stage of its
    own with ``ceil(macs / bound)`` multipliers, or a run of consecutive factors a shared stage
    on one multiplier when its interval (steps and ``SHARED_OVERHEAD``) is within the bound. A
    dynamic programme over the chain; returns (multipliers, groups, multipliers per group)."""
    n = len(macs)
    best: list[tuple[int, int, int] | None] = [None] * (n + 1)  # (cost, start, multipliers)
    best[0] = (0, 0, 0)
    for end in range(1, n + 1):
        options = []
        if best[end - 1] is not None:
            m = min(macs[end - 1], _ceil_div(macs[end - 1], bound))
            options.append((best[end - 1][0] + m, end - 1, m))
        for start in range(end - 2, -1, -1):
            if _run_steps(macs, range(start, end)) + SHARED_OVERHEAD > bound:
                break
            if best[start] is not None:
                options.append((best[start][0] + 1, start, 1))
        best[end] = min(options) if options else None
    groups, multipliers, end = [], [], n
    while end:
        _, start, m = best[end]
        groups.append(tuple(range(start, end)))
        multipliers.append(m)
        end = start
    return best[n][0], groups[::-1], multipliers[::-1]


def _shared(macs: Sequence[int], budget: int) -> Folding:
    """The fastest stages within ``budget`` multipliers: runs of
    factors on one multiplier each where that saves multipliers, stages of their own (with as
    many multipliers as the bound needs) elsewhere; a bisection on the slowest stage's cycles."""
    low, high = max(1, _ceil_div(sum(macs), budget)), _run_steps(macs, range(len(macs)))
    high += SHARED_OVERHEAD
    while low < high:
        mid = (low + high) // 2
        if _fewest(macs, mid)[0] <= budget:
            high = mid
        else:
            low = mid + 1
    _, groups, multipliers = _fewest(macs, low)
    return Folding(tuple(macs), tuple(multipliers), tuple(groups))


def _for_ii(macs: Sequence[int], ii: int) -> Folding:
    return Folding(tuple(macs), tuple(min(a, _ceil_div(a, ii)) for a in macs))


def fold(
    macs: Sequence[int], *, budget: int | None = None, target_ii: int | None = None
) -> Folding:
    """Stages and their multipliers for the fastest II within ``budget`` multipliers (shared
    stages when the budget is smaller than the number of factors), or for ``target_ii`` (one
    stage per factor, checked against ``budget`` when both are given)."""
    if not macs or any(a < 1 for a in macs):
        raise ValueError(f"macs must be positive counts, not {list(macs)!r}")
    for name, value in (("budget", budget), ("target_ii", target_ii)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if budget is None and target_ii is None:
        raise ValueError("give a multiplier budget or a target II")
    if budget is not None and budget < len(macs):
        shared = _shared(macs, budget)
        if target_ii is not None and shared.ii > target_ii:
            raise FitError(
                f"II {target_ii} needs at least {len(macs)} multipliers (one per factor) but the "
                f"budget is {budget}; the fastest II that fits is {shared.ii} (use --target-ii "
                f"{shared.ii} or more, or a larger --dsp-budget)"
            )
        return shared
    fastest = 1
    if budget is not None:
        # the smallest II whose multipliers fit: multipliers only fall as II grows
        low, high = max(1, _ceil_div(sum(macs), budget)), max(macs)
        while low < high:
            mid = (low + high) // 2
            if _for_ii(macs, mid).total_multipliers <= budget:
                high = mid
            else:
                low = mid + 1
        fastest = low
    if target_ii is None:
        folding = _for_ii(macs, fastest)
        # runs of small factors on shared stages can free multipliers for a slow one (a chain
        # of very unequal factors, such as a fixed butterfly): taken only when that is faster
        mixed = _shared(macs, budget)
        return mixed if mixed.ii < folding.ii else folding
    folding = _for_ii(macs, target_ii)
    if budget is not None and folding.total_multipliers > budget:
        raise FitError(
            f"II {target_ii} needs {folding.total_multipliers} multipliers but the budget is "
            f"{budget}; the fastest II that fits is {fastest} (use --target-ii {fastest} or more)"
        )
    return folding
