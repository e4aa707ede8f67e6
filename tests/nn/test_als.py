import re

import numpy as np
import pytest
import torch

from compiler.nn import als
from compiler.nn.als import (
    ALSError,
    als_fit,
    describe_fit,
    solve_factor,
    solve_groups,
    svd_error,
)
from compiler.nn.linear import DeButLinear
from debut.chain import Chain
from debut.errors import ChainError, CompilerError

MONOTONIC_128x400 = [
    [256, 400, 16, 25, 1],
    [256, 256, 2, 2, 16],
    [128, 256, 1, 2, 32],
    [128, 128, 2, 2, 32],
    [128, 128, 2, 2, 64],
]
BUTTERFLY_128 = [[128, 128, 2, 2, 2**k] for k in range(7)]
RULE_64_3 = [[64, 64, 4, 4, 1], [64, 64, 4, 4, 4], [64, 64, 4, 4, 16]]
RULE_64_2 = [[64, 64, 8, 8, 1], [64, 64, 8, 8, 8]]
RULE_32_3 = [[32, 32, 2, 2, 1], [32, 32, 4, 4, 2], [32, 32, 4, 4, 8]]
BUTTERFLY_16 = [[16, 16, 2, 2, 2**k] for k in range(4)]
BULGING_16 = [[32, 16, 2, 1, 1], [64, 32, 2, 1, 2], [16, 64, 4, 16, 4]]
RECTANGULAR = [[48, 64, 6, 8, 1], [32, 48, 4, 6, 8]]
# Break the density rule so that groups of a middle factor couple (joint solves):
COUPLED_16 = [[16, 16, 4, 4, 1], [16, 16, 2, 2, 1], [16, 16, 4, 4, 2], [16, 16, 2, 2, 8]]
COUPLED_32 = [[32, 32, 4, 4, 1], [32, 32, 2, 2, 4], [32, 32, 4, 4, 8], [32, 32, 8, 8, 1]]
# Multi-block factors whose product has structural zeros (every sub-problem decouples).
SPARSE_16 = [[16, 16, 2, 2, 1], [16, 16, 4, 4, 1]]

HISTORY_CHAINS = [
    RULE_64_3,
    RULE_64_2,
    BUTTERFLY_16,
    BULGING_16,
    RECTANGULAR,
    COUPLED_16,
    COUPLED_32,
    SPARSE_16,
]


def random_matrix(chain: Chain, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((chain.out_features, chain.in_features))


def rel_error(w: np.ndarray, chain: Chain, twiddle: np.ndarray) -> float:
    return float(np.linalg.norm(w - chain.materialize(twiddle)) / np.linalg.norm(w))


def assert_never_rises(history: tuple[float, ...]) -> None:
    h = np.array(history)
    assert np.all(h[1:] <= h[:-1] * (1 + 1e-12) + 1e-14), h


@pytest.mark.parametrize("spec", HISTORY_CHAINS, ids=str)
def test_error_never_rises_on_random_matrices(spec):
    chain = Chain.from_list(spec)
    for seed in range(2):
        w = random_matrix(chain, seed)
        result = als_fit(w, chain, sweeps=4, seed=seed)
        assert_never_rises(result.history)
        assert result.rejected == 0  # the solves are exact: the guard never had to step in
        assert result.history[-1] < result.history[0]
        assert result.rel_error == min(result.history)


def test_error_never_rises_on_the_design_example():
    chain = Chain.from_list(MONOTONIC_128x400)
    result = als_fit(random_matrix(chain, 0), chain, sweeps=2)
    assert_never_rises(result.history)
    assert result.rejected == 0
    assert len(result.history) == 1 + 9 + 8


def test_guard_keeps_the_previous_factor_when_a_solve_is_wrong(monkeypatch):
    chain = Chain.from_list(RULE_32_3)
    w = random_matrix(chain, 3)
    start = als_fit(w, chain, sweeps=1).twiddle
    rng = np.random.default_rng(0)
    monkeypatch.setattr(als, "_solve", lambda w, left, right, f, plan: rng.normal(size=f.params))
    result = als_fit(w, chain, sweeps=2, init=start)
    assert result.rejected == len(result.history) - 1 == 5  # a sweep without progress ends it
    assert len(set(result.history)) == 1
    np.testing.assert_array_equal(result.twiddle, start)


def test_callback_reports_every_update_in_sweep_order():
    chain = Chain.from_list(RULE_32_3)
    calls = []
    result = als_fit(
        random_matrix(chain, 1), chain, sweeps=2, tol=0.0, callback=lambda *a: calls.append(a)
    )
    assert [(s, k) for s, k, _ in calls] == [
        (0, 0), (0, 1), (0, 2), (0, 1), (0, 0),
        (1, 1), (1, 2), (1, 1), (1, 0),
    ]  # fmt: skip
    assert tuple(e for _, _, e in calls) == result.history[1:]


@pytest.mark.parametrize(
    "spec", [RULE_64_3, RULE_64_2, RULE_32_3, BUTTERFLY_16, BULGING_16, RECTANGULAR], ids=str
)
def test_exactly_representable_product_is_recovered(spec):
    chain = Chain.from_list(spec)
    for seed in range(3):
        truth = np.random.default_rng(100 + seed).standard_normal(chain.params)
        w = chain.materialize(truth)
        result = als_fit(w, chain, sweeps=30, restarts=5, target=1e-9, seed=seed)
        assert result.rel_error < 1e-6
        assert rel_error(w, chain, result.twiddle) < 1e-6
        assert_never_rises(result.history)


@pytest.mark.parametrize("spec", [*HISTORY_CHAINS, MONOTONIC_128x400], ids=str)
def test_twiddle_materialises_to_the_reported_error(spec):
    chain = Chain.from_list(spec)
    w = random_matrix(chain, 7)
    result = als_fit(w, chain, sweeps=3, restarts=2, seed=3)
    assert result.twiddle.shape == (chain.params,) and result.twiddle.dtype == np.float64
    assert rel_error(w, chain, result.twiddle) == pytest.approx(result.rel_error, rel=1e-9)


@pytest.mark.parametrize("shape", [(1, 1), (5, 9), (16, 3), (32, 32)])
def test_one_factor_dense_chain_recovers_any_matrix(shape):
    chain = Chain.dense(*shape)
    w = np.random.default_rng(4).standard_normal(shape)
    result = als_fit(w, chain)
    assert result.rel_error < 1e-14
    np.testing.assert_allclose(chain.materialize(result.twiddle), w, rtol=0, atol=1e-14)
    assert len(result.history) == 2


def full_solve(w: np.ndarray, chain: Chain, twiddle: np.ndarray, k: int) -> np.ndarray:
    """Reference: every entry of factor k at once, minimum-norm least squares."""
    mats = chain.factor_matrices(twiddle)
    left = np.eye(chain.factors[k].p)
    for m in mats[k + 1 :]:
        left = m @ left
    right = np.eye(chain.in_features)
    for m in mats[:k]:
        right = m @ right
    rows, cols = chain.factors[k].rows_cols()
    design = left[:, rows][:, None, :] * right[cols, :].T[None, :, :]
    solution, *_ = np.linalg.lstsq(design.reshape(w.size, -1), w.reshape(-1), rcond=None)
    return solution


@pytest.mark.parametrize(
    "spec",
    [RULE_32_3, BUTTERFLY_16, BULGING_16, RECTANGULAR, COUPLED_16, COUPLED_32, SPARSE_16],
    ids=str,
)
def test_split_solve_equals_the_joint_solve(spec):
    chain = Chain.from_list(spec)
    rng = np.random.default_rng(11)
    w = random_matrix(chain, 12)
    twiddle = rng.standard_normal(chain.params)
    for k in range(len(chain)):
        got = solve_factor(w, chain, twiddle, k)
        want = full_solve(w, chain, twiddle, k)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())


def test_coupled_groups_are_detected():
    assert solve_groups(COUPLED_16, 1) == ((0, 1), (2, 3), (4, 5), (6, 7))
    assert solve_groups(COUPLED_32, 1) == tuple(tuple(range(i, i + 4)) for i in (0, 4, 8, 12))
    assert solve_groups(COUPLED_32, 2) == (tuple(range(8)),)
    chain = Chain.from_list(COUPLED_16)
    for k in (0, 2, 3):
        f = chain.factors[k]
        assert solve_groups(chain, k) == tuple((g,) for g in range(f.nb * f.t))


@pytest.mark.parametrize("spec", [MONOTONIC_128x400, BUTTERFLY_128, RULE_64_3, BULGING_16], ids=str)
def test_density_rule_chains_split_into_single_groups(spec):
    chain = Chain.from_list(spec)
    for k, f in enumerate(chain.factors):
        assert solve_groups(chain, k) == tuple((g,) for g in range(f.nb * f.t))


def test_restarts_keep_the_best_run():
    chain = Chain.from_list(RULE_32_3)
    w = random_matrix(chain, 5)
    one = als_fit(w, chain, sweeps=3, restarts=1, seed=9)
    three = als_fit(w, chain, sweeps=3, restarts=3, seed=9)
    assert three.restarts_used == 3 and one.restarts_used == 1
    assert three.rel_error <= one.rel_error
    assert als_fit(w, chain, sweeps=3, restarts=3, target=1.0).restarts_used == 1


def test_same_seed_same_fit():
    chain = Chain.from_list(COUPLED_16)
    w = random_matrix(chain, 2)
    a, b = (als_fit(w, chain, restarts=2, seed=42) for _ in range(2))
    np.testing.assert_array_equal(a.twiddle, b.twiddle)
    assert a.history == b.history


def test_starts_from_a_trained_layer():
    torch.manual_seed(0)
    layer = DeButLinear(64, 64, RULE_64_3)
    w = layer.weight_matrix()  # a float32 tensor that requires grad
    result = als_fit(w, layer.chain, init=layer.twiddle, sweeps=1)
    assert result.history[0] < 1e-6
    assert result.rel_error <= result.history[0]
    layer.twiddle.data.copy_(torch.from_numpy(result.twiddle))


def test_zero_matrix_fits_with_zero_factors():
    chain = Chain.from_list(RULE_32_3)
    result = als_fit(np.zeros((32, 32)), chain)
    assert result.rel_error == 0.0 and not result.twiddle.any()


def test_svd_error_agrees_with_numpy():
    rng = np.random.default_rng(3)
    w = (
        rng.standard_normal((40, 24))
        @ np.diag(np.linspace(3, 0.1, 24))
        @ rng.standard_normal((24, 24))
    )
    u, s, vt = np.linalg.svd(w)
    for params in (0, 63, 64, 191, 200, 5000):
        rank, error = svd_error(w, params)
        assert rank == min(params // 64, 24)
        approx = (u[:, :rank] * s[:rank]) @ vt[:rank]
        assert error == pytest.approx(np.linalg.norm(w - approx) / np.linalg.norm(w), abs=1e-12)
    assert svd_error(np.zeros((3, 4)), 14) == (2, 0.0)


def test_describe_fit_compares_at_equal_parameters():
    chain = Chain.from_list(RULE_64_3)
    w = random_matrix(chain, 0)
    result = als_fit(w, chain, sweeps=1)
    line = describe_fit(w, chain, result)
    assert line.startswith(f"ALS relative error {result.rel_error:.4g} with 768 params; ")
    assert line.endswith(f"truncated SVD rank 6 {svd_error(w, 768)[1]:.4g} with 768 params")


def test_hadamard_is_a_butterfly_beyond_svd_reach():
    h = np.ones((1, 1))
    for _ in range(5):
        h = np.block([[h, h], [h, -h]])
    chain = Chain.from_list([[32, 32, 2, 2, 2**k] for k in range(5)])
    result = als_fit(h, chain, restarts=3, target=1e-9)
    assert result.rel_error < 1e-9
    assert svd_error(h, chain.params)[1] > 0.9


@pytest.mark.parametrize(
    ("w", "message"),
    [
        (np.ones((64, 64)), "W must have shape (128, 400) to match the chain, not (64, 64)"),
        (np.ones(3), "W must be a 2-D matrix, not an array of shape (3,)"),
        (
            np.full((128, 400), np.nan),
            "W must be finite, not contain 51200 NaN or infinite entries",
        ),
        (
            np.ones((128, 400), dtype=complex),
            "W must be a real matrix, not an array of dtype complex128",
        ),
    ],
)
def test_bad_matrices_are_named(w, message):
    with pytest.raises(ALSError, match=f"^{re.escape(message)}$"):
        als_fit(w, MONOTONIC_128x400)


def test_bad_options_are_named():
    w = np.ones((32, 32))
    cases = [
        ({"sweeps": 0}, "sweeps must be an integer >= 1, not 0"),
        ({"restarts": 1.5}, "restarts must be an integer >= 1, not 1.5"),
        ({"tol": -1.0}, "tol must be a non-negative number, not -1.0"),
        ({"target": float("nan")}, "target must be a non-negative number, not nan"),
        (
            {"init": np.ones(5)},
            "init must be a real vector of shape (320,) to match the chain, "
            "not float64 of shape (5,)",
        ),
        (
            {"init": np.full(320, np.inf)},
            "init must be finite, not contain NaN or infinite entries",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ALSError, match=f"^{re.escape(message)}$"):
            als_fit(w, RULE_32_3, **kwargs)
    with pytest.raises(ALSError, match=r"^params must be an integer >= 0, not -1$"):
        svd_error(w, -1)
    with pytest.raises(ALSError, match=r"^factor index must be in range\(0, 3\), not 3$"):
        solve_groups(RULE_32_3, 3)
    assert issubclass(ALSError, ChainError) and issubclass(ALSError, CompilerError)
