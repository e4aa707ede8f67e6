import numpy as np
import pytest

from debut.chain import Chain, ChainShape, Factor
from debut.errors import ChainError

MONOTONIC_128x400 = [
    [256, 400, 16, 25, 1],
    [256, 256, 2, 2, 16],
    [128, 256, 1, 2, 32],
    [128, 128, 2, 2, 32],
    [128, 128, 2, 2, 64],
]
BULGING_128x400 = [
    [256, 400, 16, 25, 1],
    [512, 256, 2, 1, 16],
    [512, 512, 2, 2, 32],
    [256, 512, 1, 2, 64],
    [128, 256, 2, 4, 64],
]


def test_design_examples_accepted_with_published_counts():
    mono = Chain.from_list(MONOTONIC_128x400, in_features=400, out_features=128)
    bulge = Chain.from_list(BULGING_128x400, in_features=400, out_features=128)
    assert mono.params == 7680 and bulge.params == 8960
    assert round(1 - mono.params / (128 * 400), 3) == 0.85
    assert mono.shape is ChainShape.MONOTONIC and bulge.shape is ChainShape.BULGING
    assert mono.is_dense() and bulge.is_dense()
    assert mono.widths == (400, 256, 256, 128, 128, 128)


def test_dense_chain_is_one_factor():
    chain = Chain.dense(10, 64)
    assert chain.as_list() == [[10, 64, 10, 64, 1]]
    assert chain.params == 640 and chain.is_dense()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([[6, 4, 4, 2, 1]], "factor 0 [6, 4, 4, 2, 1]: p=6 must be a multiple of r*t=4"),
        ([[4, 6, 2, 4, 1]], "factor 0 [4, 6, 2, 4, 1]: q=6 must be a multiple of s*t=4"),
        (
            [[8, 4, 2, 2, 1]],
            "factor 0 [8, 4, 2, 2, 1]: block counts differ, p/(r*t)=4 but q/(s*t)=2",
        ),
        ([[8, 8, 2, 2, 1], [8, 4, 2, 2, 1]], "factor 1 [8, 4, 2, 2, 1]: block counts differ"),
        (
            [[8, 8, 2, 2, 1], [4, 4, 2, 2, 1]],
            "factor 1 [4, 4, 2, 2, 1]: q=4 must equal p=8 of factor 0",
        ),
        ([[8, 8, 2, 2, 0]], "factor 0 [8, 8, 2, 2, 0]: every entry must be positive"),
        ([[8, 8, 2, 2]], "factor 0 must be 5 integers [p, q, r, s, t], not [8, 8, 2, 2]"),
        ([[8, 8, 2.0, 2, 1]], "factor 0 must be 5 integers [p, q, r, s, t], not [8, 8, 2.0, 2, 1]"),
        ([], "chain must be a non-empty list of [p, q, r, s, t], not []"),
    ],
)
def test_invalid_chains_name_factor_and_rule(spec, message):
    with pytest.raises(ChainError) as info:
        Chain.from_list(spec)
    assert str(info.value).startswith(message)


def test_in_out_mismatch_is_reported():
    with pytest.raises(
        ChainError, match=r"factor 0 \[256, 400, 16, 25, 1\]: q=400 must equal in_features=512"
    ):
        Chain.from_list(MONOTONIC_128x400, in_features=512)
    with pytest.raises(
        ChainError, match=r"factor 4 \[128, 128, 2, 2, 64\]: p=128 must equal out_features=100"
    ):
        Chain.from_list(MONOTONIC_128x400, out_features=100)


def test_support_matches_rule_and_layout():
    f = Factor.checked([12, 8, 3, 2, 2])
    support = f.support()
    i, j = np.indices(support.shape)
    expected = (i // (f.r * f.t) == j // (f.s * f.t)) & (i % f.t == j % f.t)
    assert (support == expected).all()
    assert support.sum() == f.params == f.p * f.s == f.q * f.r
    # theta[((b*t + d)*r + a)*s + c] sits at W[b*r*t + a*t + d, b*s*t + c*t + d]
    theta = np.arange(1, f.params + 1, dtype=float)
    dense = f.materialize(theta)
    for b in range(f.nb):
        for d in range(f.t):
            for a in range(f.r):
                for c in range(f.s):
                    value = theta[((b * f.t + d) * f.r + a) * f.s + c]
                    assert dense[b * f.r * f.t + a * f.t + d, b * f.s * f.t + c * f.t + d] == value


def test_density_check_finds_structural_zeros():
    # two block-diagonal factors that never mix blocks: W stays block diagonal
    chain = Chain.from_list([[8, 8, 2, 2, 1], [8, 8, 2, 2, 1]])
    assert not chain.is_dense()
    assert chain.structural_zeros() == 64 - 4 * 4
    assert Chain.from_list([[8, 8, 2, 2, 1], [8, 8, 2, 2, 2], [8, 8, 2, 2, 4]]).is_dense()


def test_materialize_is_product_of_factors():
    chain = Chain.from_list(BULGING_128x400)
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(chain.params)
    mats = chain.factor_matrices(theta)
    expected = mats[4] @ mats[3] @ mats[2] @ mats[1] @ mats[0]
    np.testing.assert_allclose(chain.materialize(theta), expected)
    with pytest.raises(ChainError, match="needs 8960 parameters, not shape"):
        chain.materialize(theta[:-1])
