import itertools
import math

import pytest

from compiler.folding import fold
from debut.errors import FitError

DEBUT_MACS = [1024, 1024, 1024, 1024, 256, 1280]  # a 6-stage DeBut MLP, one stage per factor
DENSE_MACS = [8192, 16384, 1280]


def brute_force_fastest(macs, budget):
    """The smallest II for which some assignment of multipliers fits, by trying every II."""
    for ii in itertools.count(1):
        if sum(math.ceil(a / ii) for a in macs) <= budget:
            return ii


@pytest.mark.parametrize("budget", [6, 7, 8, 16, 28, 56, 72, 156, 1000, 10_000])
@pytest.mark.parametrize("macs", [DEBUT_MACS, DENSE_MACS, [5, 7, 11], [1, 1, 100]])
def test_fastest_ii_within_budget(macs, budget):
    if budget < len(macs):
        return
    folding = fold(macs, budget=budget)
    assert folding.total_multipliers <= budget
    assert folding.ii == brute_force_fastest(macs, budget)
    assert all(1 <= m <= a for m, a in zip(folding.multipliers, macs, strict=True))


def test_efficiency_targets_for_the_shipped_models():
    assert fold(DEBUT_MACS, budget=156).efficiency >= 0.9
    assert fold(DEBUT_MACS, budget=28).efficiency >= 0.85
    assert fold(DENSE_MACS, budget=156).efficiency >= 0.9
    assert fold(DENSE_MACS, budget=28).efficiency >= 0.9


def test_fully_parallel_when_budget_allows():
    folding = fold([12, 30], budget=100)
    assert folding.ii == 1 and folding.multipliers == (12, 30)


def test_target_ii():
    folding = fold(DEBUT_MACS, target_ii=100)
    assert folding.multipliers == (11, 11, 11, 11, 3, 13) and folding.ii == 99  # <= 100
    with pytest.raises(
        FitError,
        match=r"^II 10 needs 566 multipliers but the budget is 156; the fastest II that fits is 37 "
        r"\(use --target-ii 37 or more\)$",
    ):
        fold(DEBUT_MACS, budget=156, target_ii=10)


def test_errors():
    with pytest.raises(
        FitError,
        match="has 6 pipeline stages and needs at least one multiplier each, but the budget is 4",
    ):
        fold(DEBUT_MACS, budget=4)
    with pytest.raises(ValueError, match="budget must be a positive integer, not 0"):
        fold(DEBUT_MACS, budget=0)
    with pytest.raises(ValueError, match="give a multiplier budget"):
        fold(DEBUT_MACS)
