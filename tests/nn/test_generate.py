import functools
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.nn.generate import (
    butterfly_chain,
    chain_from_rs,
    default_score,
    hardware_cost,
    min_chain_params,
    search_chains,
    suggest_chain,
)
from debut.chain import Chain, ChainShape
from debut.errors import ChainSearchError

MONOTONIC_128x400 = (
    "[256,400,16,25,1] [256,256,2,2,16] [128,256,1,2,32] [128,128,2,2,32] [128,128,2,2,64]"
)
BULGING_128x400 = (
    "[256,400,16,25,1] [512,256,2,1,16] [512,512,2,2,32] [256,512,1,2,64] [128,256,2,4,64]"
)


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@functools.cache
def rule_chains(out, inp, max_factors):
    """Every density-rule chain, built from the formulas and validated by Chain.from_list."""
    return tuple(_rule_chains(out, inp, max_factors))


def _rule_chains(out, inp, max_factors):
    def walk(a, b, prefix):
        if a == b == 1:
            yield prefix
            return
        if len(prefix) == max_factors:
            return
        for r in divisors(a):
            for s in divisors(b):
                if (r, s) != (1, 1):
                    yield from walk(a // r, b // s, [*prefix, (r, s)])

    for pairs in walk(out, inp, []):
        rs, ss = [r for r, _ in pairs], [s for _, s in pairs]
        spec = []
        for k in range(len(pairs)):
            t, nb = math.prod(rs[:k]), math.prod(ss[k + 1 :])
            spec.append([nb * rs[k] * t, nb * ss[k] * t, rs[k], ss[k], t])
        yield Chain.from_list(spec, inp, out)


def wanted(chain, shape, lo, hi):
    """Whether a chain has the shape and its intermediate widths lie in [lo, hi]."""
    if not all(lo <= w <= hi for w in chain.widths[1:-1]):
        return False
    return shape == "any" or chain.shape.value == shape


def check_rules(chain, out, inp):
    """Valid, no padding, dense, density rule, no useless diagonal."""
    assert Chain.from_list(chain.as_list(), inp, out) == chain
    assert chain.factors[0].t == 1
    assert chain.factors[-1].nb == 1
    for before, after in zip(chain.factors, chain.factors[1:], strict=False):
        assert after.t == before.r * before.t
    if (out, inp) != (1, 1):
        assert all((f.r, f.s) != (1, 1) for f in chain)


def test_worked_example_monotonic():
    example = chain_from_rs([16, 2, 1, 2, 2], [25, 2, 2, 2, 2])
    assert str(example) == MONOTONIC_128x400 and example.params == 7680
    assert example in search_chains(128, 400, max_params=7680)
    assert example in search_chains(128, 400, max_params=9000, shape="any")


def test_worked_example_bulging():
    example = chain_from_rs([16, 2, 2, 1, 2], [25, 1, 2, 2, 4])
    assert str(example) == BULGING_128x400 and example.params == 8960
    assert example in search_chains(128, 400, max_params=8960, shape="bulging")
    assert example in search_chains(128, 400, max_params=9000, shape="any")
    assert example not in search_chains(128, 400, max_params=10**5)


SIZES = [(10, 64), (128, 64), (96, 80), (7, 13), (64, 10), (12, 18), (1, 6), (5, 1)]


@pytest.mark.parametrize(("out", "inp"), SIZES)
@pytest.mark.parametrize("shape", ["monotonic", "bulging", "any"])
def test_every_chain_valid_dense_within_budget(out, inp, shape):
    max_width = 8 * max(out, inp)  # lets the prime sizes bulge too
    try:
        smallest = min_chain_params(out, inp, shape=shape, max_width=max_width)
    except ChainSearchError:
        assert shape == "bulging" and 1 in (out, inp)  # a vector cannot bulge
        return
    budget = smallest + (out * inp) // 16
    chains = list(search_chains(out, inp, max_params=budget, shape=shape, max_width=max_width))
    assert len({str(c) for c in chains}) == len(chains) > 0
    for chain in chains:
        assert chain.params <= budget
        assert wanted(chain, shape, min(out, inp), max_width)
    for chain in chains[:: max(1, len(chains) // 20)]:  # full checks on a spread sample
        check_rules(chain, out, inp)
        assert chain.is_dense()
    cheapest = search_chains(out, inp, max_params=smallest, shape=shape, max_width=max_width)
    assert {c.params for c in cheapest} == {smallest}


@pytest.mark.parametrize(("out", "inp"), [(12, 8), (8, 12), (7, 13), (16, 16), (18, 12), (10, 64)])
@pytest.mark.parametrize(
    ("shape", "min_width", "max_width"),
    [
        ("monotonic", None, None),
        ("monotonic", 1, None),
        ("bulging", None, None),
        ("bulging", 1, 200),
        ("any", None, None),
        ("any", 2, 100),
    ],
)
def test_search_is_complete_and_minimum_exact(out, inp, shape, min_width, max_width):
    limit = max(out, inp)
    lo = min(out, inp) if min_width is None else min_width
    hi = (limit if shape == "monotonic" else 4 * limit) if max_width is None else max_width
    everything = [c for c in rule_chains(out, inp, 8) if wanted(c, shape, lo, hi)]
    kwargs = dict(shape=shape, min_width=min_width, max_width=max_width)
    if not everything:
        with pytest.raises(ChainSearchError):
            min_chain_params(out, inp, **kwargs)
        return
    smallest = min(c.params for c in everything)
    assert min_chain_params(out, inp, **kwargs) == smallest
    for budget in (smallest, (smallest + out * inp) // 2, 10 * out * inp):
        expected = sorted(str(c) for c in everything if c.params <= budget)
        found = [str(c) for c in search_chains(out, inp, max_params=budget, **kwargs)]
        assert sorted(found) == expected


def test_max_factors_limits_length():
    everything = [c for c in rule_chains(16, 16, 3) if wanted(c, "monotonic", 16, 16)]
    found = list(search_chains(16, 16, max_params=10**6, max_factors=3))
    assert sorted(map(str, found)) == sorted(map(str, everything))
    assert max(len(c) for c in found) == 3
    assert min_chain_params(16, 16, max_factors=2) == min(
        c.params for c in everything if len(c) <= 2
    )


@settings(max_examples=40, deadline=None)
@given(
    out=st.integers(1, 48),
    inp=st.integers(1, 48),
    shape=st.sampled_from(["monotonic", "bulging", "any"]),
    slack=st.integers(0, 400),
)
def test_property_chains_follow_the_rules(out, inp, shape, slack):
    try:
        smallest = min_chain_params(out, inp, shape=shape, min_width=1)
    except ChainSearchError:
        assert shape == "bulging"
        return
    budget = smallest + slack
    chains = list(search_chains(out, inp, max_params=budget, shape=shape, min_width=1))
    assert min(c.params for c in chains) == smallest
    assert len({str(c) for c in chains}) == len(chains)
    for chain in chains[:50]:
        check_rules(chain, out, inp)
        assert chain.is_dense()
        assert chain.params <= budget
        assert wanted(chain, shape, 1, 4 * max(out, inp))


def test_square_monotonic_chains_keep_their_width():
    # min_width = max_width = 128 forces r_k = s_k: 128 * sum(r) params with prod(r) = 128
    chains = list(search_chains(128, 128, max_params=128 * 128))
    assert len(chains) == 64  # the compositions of 7
    assert all(f.r == f.s for c in chains for f in c)
    assert min_chain_params(128, 128) == 128 * 14


def test_counts_128x128():
    def count(budget, shape, **kwargs):
        return sum(1 for _ in search_chains(128, 128, max_params=budget, shape=shape, **kwargs))

    assert count(2000, "monotonic") == 21
    assert count(4000, "bulging") == 26341
    assert count(4000, "any") == 26397


def test_bulging_needs_room():
    with pytest.raises(
        ChainSearchError,
        match=r"^no bulging chain for 7x13 has at most 8 factors and intermediate widths in "
        r"\[7, 52\] \(allow more factors or a wider range of widths\)$",
    ):
        min_chain_params(7, 13, shape="bulging")
    # [7,13,7,1,1] then [7,91,1,13,7]: the only way to bulge, through a width of 91
    assert [
        str(c) for c in search_chains(7, 13, max_params=10**4, shape="bulging", max_width=91)
    ] == ["[91,13,7,1,1] [7,91,1,13,7]"]


def test_butterfly_power_of_two():
    chain = butterfly_chain(64, 64)
    assert chain.as_list() == [[64, 64, 2, 2, 2**k] for k in range(6)]
    for n in range(1, 9):
        assert len(butterfly_chain(2**n, 2**n)) == n


@pytest.mark.parametrize(("out", "inp"), [(128, 64), (10, 128), (64, 128), (7, 13), (96, 80)])
def test_butterfly_other_sizes(out, inp):
    chain = butterfly_chain(out, inp)
    check_rules(chain, out, inp)
    assert chain.is_dense()
    k = min((n & -n).bit_length() - 1 for n in (out, inp))
    assert sum((f.r, f.s) == (2, 2) for f in chain) >= k
    dense = [f for f in chain if (f.r, f.s) != (2, 2)]
    assert len(dense) == 1 and (dense[0].r, dense[0].s) == (out >> k, inp >> k)


def test_butterfly_places_the_dense_factor_where_cheaper():
    # 10x128: [10,128,5,64,1] first costs 640 + 20, last 256 + 640
    assert str(butterfly_chain(10, 128)) == "[10,128,5,64,1] [10,10,2,2,5]"
    # 128x10: [128,10,64,5,1] first costs 640 + 256, last 20 + 640
    assert str(butterfly_chain(128, 10)) == "[10,10,2,2,1] [128,10,64,5,2]"
    assert str(butterfly_chain(7, 13)) == "[7,13,7,13,1]"
    assert str(butterfly_chain(1, 1)) == "[1,1,1,1,1]"


def test_chain_from_rs():
    chain = chain_from_rs([16, 2, 1, 2, 2], [25, 2, 2, 2, 2])
    assert str(chain) == MONOTONIC_128x400
    assert chain_from_rs([1], [1]).as_list() == [[1, 1, 1, 1, 1]]
    with pytest.raises(
        ValueError, match=r"^factor 1 must not have r = s = 1 \(a useless diagonal\)$"
    ):
        chain_from_rs([2, 1], [2, 1])
    with pytest.raises(ValueError, match=r"^s\[0\] must be a positive integer, not 0$"):
        chain_from_rs([2], [0])
    with pytest.raises(ValueError, match=r"^r and s must be non-empty and of equal length"):
        chain_from_rs([2, 2], [4])


def test_hardware_cost_and_default_score():
    chain = chain_from_rs([16, 2, 1, 2, 2], [25, 2, 2, 2, 2])
    assert [f.params for f in chain] == [6400, 512, 256, 256, 256]
    assert hardware_cost(chain) == 5 * 6400
    assert default_score(chain, 7680) == pytest.approx(1 - 0.02 * 4 - 0.05 * (32000 / 7680 - 1))
    balanced = butterfly_chain(64, 64)
    assert hardware_cost(balanced) == balanced.params
    assert default_score(Chain.dense(4, 4), 16) == 1


@pytest.mark.parametrize(
    ("out", "inp", "compression"),
    [
        (128, 400, 0.85),
        (84, 120, 0.5),
        (84, 120, 0.85),
        (10, 64, 0.5),
        (64, 64, 0.5),
        (12, 18, 0.6),
    ],
)
@pytest.mark.parametrize("shape", ["monotonic", "bulging", "any"])
def test_suggest_maximises_default_score(out, inp, shape, compression):
    budget = math.floor(round((1 - compression) * out * inp, 6))
    chains = list(search_chains(out, inp, max_params=budget, shape=shape, max_factors=5))
    if not chains:
        with pytest.raises(ChainSearchError):
            suggest_chain(out, inp, compression=compression, shape=shape, max_factors=5)
        return
    chain = suggest_chain(out, inp, compression=compression, shape=shape, max_factors=5)
    assert str(chain) in {str(c) for c in chains}
    best = max(default_score(c, budget) for c in chains)
    assert default_score(chain, budget) == pytest.approx(best, abs=1e-12)
    assert chain == suggest_chain(out, inp, max_params=budget, shape=shape, max_factors=5)


def test_suggest_respects_budget_and_shape():
    chain = suggest_chain(128, 400, compression=0.85)
    assert chain.params <= 7680 and chain.shape is ChainShape.MONOTONIC
    check_rules(chain, 128, 400)
    assert chain.is_dense()
    chain = suggest_chain(128, 400, max_params=9000, shape=ChainShape.BULGING)
    assert chain.params <= 9000 and chain.shape is ChainShape.BULGING
    assert suggest_chain(12, 8, max_params=96).params <= 96


def test_suggest_with_key():
    def key(chain):
        return str(chain) == MONOTONIC_128x400

    assert str(suggest_chain(128, 400, compression=0.85, key=key)) == MONOTONIC_128x400
    fewest = suggest_chain(128, 128, max_params=4000, shape="any", key=lambda c: -c.params)
    assert fewest.params == min_chain_params(128, 128, shape="any")


def test_suggest_names_the_smallest_budget():
    smallest = min_chain_params(128, 400)
    assert smallest == 2464
    message = (
        "no monotonic chain for 128x400 within 100 params; the smallest needs 2464 "
        "(use max_params >= 2464 or compression <= 0.9518)"
    )
    with pytest.raises(ChainSearchError, match=f"^{re.escape(message)}$"):
        suggest_chain(128, 400, max_params=100)
    # both suggested remedies work
    assert suggest_chain(128, 400, max_params=2464).params == 2464
    assert suggest_chain(128, 400, compression=0.9518).params == 2464
    with pytest.raises(ChainSearchError, match=r"^no bulging chain for 128x400 within 2560 "):
        suggest_chain(128, 400, compression=0.95, shape="bulging")
    with pytest.raises(ChainSearchError, match=r"^no chain for 64x64 within 614 params; "):
        suggest_chain(64, 64, compression=0.85, shape="any")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(out_features=0), "out_features must be a positive integer, not 0"),
        (dict(in_features=True), "in_features must be a positive integer, not True"),
        (dict(in_features=2.0), "in_features must be a positive integer, not 2.0"),
        (dict(max_params=0), "max_params must be a positive integer, not 0"),
        (dict(shape="round"), "shape must be 'monotonic', 'bulging' or 'any', not 'round'"),
        (dict(max_factors=0), "max_factors must be a positive integer, not 0"),
        (dict(min_width=-1), "min_width must be a positive integer, not -1"),
        (dict(max_width="8"), "max_width must be a positive integer, not '8'"),
    ],
)
def test_argument_errors(kwargs, message):
    args = dict(out_features=12, in_features=8, max_params=100) | kwargs
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        search_chains(**args)  # raises on the call, not on the first chain
    if "max_params" not in kwargs:
        args.pop("max_params")
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            min_chain_params(**args)


def test_suggest_argument_errors():
    with pytest.raises(
        ValueError,
        match=r"^exactly one of max_params and compression must be given, "
        r"not max_params=None and compression=None$",
    ):
        suggest_chain(12, 8)
    with pytest.raises(
        ValueError, match=r"^exactly one of .* not max_params=10 and compression=0.5$"
    ):
        suggest_chain(12, 8, max_params=10, compression=0.5)
    for bad in (1.0, -0.1, "0.5", True):
        message = f"compression must be a number in [0, 1), not {bad!r}"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            suggest_chain(12, 8, compression=bad)


def test_numpy_integers_accepted():
    chains = list(search_chains(np.int64(12), np.int32(8), max_params=np.int64(96)))
    assert chains and all(type(f.p) is int for c in chains for f in c)
