import itertools
import math

import pytest

from compiler.folding import SHARED_OVERHEAD, fold
from debut.errors import FitError
from hw.shared_stage import HAZARD_BUBBLES

DEBUT_MACS = [1024, 1024, 1024, 1024, 256, 1280]  # a 6-stage DeBut MLP, one stage per factor
DENSE_MACS = [8192, 16384, 1280]


def partitions(n):
    """Every cut of ``range(n)`` into runs of consecutive indices."""
    for cuts in itertools.product([False, True], repeat=n - 1):
        groups, group = [], [0]
        for k, cut in enumerate(cuts, start=1):
            if cut:
                groups.append(group)
                group = []
            group.append(k)
        yield [*groups, group]


def brute_force_fastest(macs, budget):
    """The smallest II of any cut of the chain into stages that fits ``budget``: a factor alone
    with as many multipliers as it likes, a run of several on one multiplier (its products, the
    bubbles between its factors and the overhead per vector), by trying every II."""
    best = None
    for groups in partitions(len(macs)):
        shared = [
            sum(macs[k] for k in g) + HAZARD_BUBBLES * (len(g) - 1) + SHARED_OVERHEAD
            for g in groups
            if len(g) > 1
        ]
        singles = [macs[g[0]] for g in groups if len(g) == 1]
        if len(shared) + len(singles) > budget:
            continue
        for ii in itertools.count(max(shared, default=1)):
            if best is not None and ii >= best:
                break
            if len(shared) + sum(math.ceil(a / ii) for a in singles) <= budget:
                best = ii
                break
    return best


@pytest.mark.parametrize("budget", [1, 2, 3, 6, 7, 8, 16, 28, 56, 72, 156, 1000, 10_000])
@pytest.mark.parametrize(
    "macs", [DEBUT_MACS, DENSE_MACS, [5, 7, 11], [1, 1, 100], [30, 40, 20, 900, 25]]
)
def test_fastest_ii_within_budget(macs, budget):
    folding = fold(macs, budget=budget)
    assert folding.total_multipliers <= budget
    assert folding.ii == brute_force_fastest(macs, budget)
    assert sorted(k for g in folding.groups for k in g) == list(range(len(macs)))
    for group, m in zip(folding.groups, folding.multipliers, strict=True):
        assert list(group) == list(range(group[0], group[-1] + 1))  # consecutive factors
        assert 1 <= m <= (macs[group[0]] if len(group) == 1 else 1)


def test_one_stage_per_factor_unless_sharing_is_faster():
    folding = fold(DEBUT_MACS, budget=28)
    assert folding.groups == tuple((k,) for k in range(6))
    # one large factor after small ones: the small ones share a multiplier, the large one
    # takes the rest
    folding = fold([20, 20, 20, 20, 1000], budget=8)
    assert folding.groups == ((0, 1, 2, 3), (4,)) and folding.multipliers == (1, 7)


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
    fastest = brute_force_fastest(DEBUT_MACS, 4)
    with pytest.raises(
        FitError,
        match=r"II 100 needs at least 6 multipliers \(one per factor\) but the budget is 4; "
        rf"the fastest II that fits is {fastest} ",
    ):
        fold(DEBUT_MACS, budget=4, target_ii=100)
    with pytest.raises(ValueError, match="budget must be a positive integer, not 0"):
        fold(DEBUT_MACS, budget=0)
    with pytest.raises(ValueError, match="give a multiplier budget"):
        fold(DEBUT_MACS)
