"""Folding: how many multipliers each pipeline stage gets, from a budget or a target II.

A stage of ``macs`` products per vector with ``m`` multipliers takes ``ceil(macs / m)`` cycles;
the pipeline's initiation interval (II) is its slowest stage's. For a budget the compiler takes
the fastest II whose multipliers fit (the budget is there to be used), giving each stage the
fewest multipliers that meet that II.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from debut.errors import FitError

__all__ = ["Folding", "fold"]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Folding:
    macs: tuple[int, ...]  # per stage, per vector
    multipliers: tuple[int, ...]  # per stage

    @property
    def stage_ii(self) -> tuple[int, ...]:
        return tuple(_ceil_div(a, m) for a, m in zip(self.macs, self.multipliers, strict=True))

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


def _for_ii(macs: Sequence[int], ii: int) -> Folding:
    return Folding(tuple(macs), tuple(min(a, _ceil_div(a, ii)) for a in macs))


def fold(
    macs: Sequence[int], *, budget: int | None = None, target_ii: int | None = None
) -> Folding:
    """Multipliers per stage for the fastest II within ``budget`` multipliers, or for
    ``target_ii`` (checked against ``budget`` when both are given)."""
    if not macs or any(a < 1 for a in macs):
        raise ValueError(f"macs must be positive counts, not {list(macs)!r}")
    for name, value in (("budget", budget), ("target_ii", target_ii)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if budget is None and target_ii is None:
        raise ValueError("give a multiplier budget or a target II")
    if budget is not None and budget < len(macs):
        raise FitError(
            f"the design has {len(macs)} pipeline stages and needs at least one multiplier each, "
            f"but the budget is {budget}; use --dsp-budget {len(macs)} or more, or a board with "
            "more DSPs"
        )
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
        return _for_ii(macs, fastest)
    folding = _for_ii(macs, target_ii)
    if budget is not None and folding.total_multipliers > budget:
        raise FitError(
            f"II {target_ii} needs {folding.total_multipliers} multipliers but the budget is "
            f"{budget}; the fastest II that fits is {fastest} (use --target-ii {fastest} or more)"
        )
    return folding
