"""Alternating least squares (ALS): fit a DeBut chain to a dense matrix.

``W (out x in) ~ B_N ... B_1``. Each update fixes every factor but one, ``B_k``, and replaces it by
an exact (minimum-norm) least-squares solution of ``min ||W - L B_k R||_F`` over the free entries of
``B_k``, where ``L = B_N ... B_{k+1}`` and ``R = B_{k-1} ... B_1``. Updates run left to right, then
right to left (one sweep), so the relative Frobenius error ``||W - B_N ... B_1|| / ||W||`` never
rises from one update to the next.

The free entries of ``B_k`` fall into ``nb * t`` groups, one ``r x s`` matrix ``X_g`` per block and
diagonal position. Two groups interact only where both ``L^T L`` (on their rows) and ``R R^T`` (on
their columns) are structurally non-zero; a group that interacts with no other is solved alone as
``X_g = pinv(L_g) W pinv(R_g)``, and connected sets of interacting groups are solved jointly through
their normal equations. For chains that meet the density rule every group is alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from debut.chain import Chain, Factor
from debut.errors import ChainError

__all__ = [
    "ALSError",
    "ALSResult",
    "als_fit",
    "describe_fit",
    "solve_factor",
    "solve_groups",
    "svd_error",
]

# An update is rejected (the factor kept) if the error would rise by more than round-off.
GUARD_RTOL = 1e-12
GUARD_ATOL = 1e-14
# A run stops once its relative error is this small: below it round-off, not the fit, decides.
NOISE_FLOOR = 1e-13


class ALSError(ChainError):
    """The matrix, chain, starting point or an option given to an ALS fit is invalid."""


@dataclass(frozen=True, eq=False)
class ALSResult:
    """Outcome of :func:`als_fit`.

    ``twiddle`` is the best chain found (a new flat float64 array, the reference layout) and
    ``rel_error`` its relative Frobenius error. ``history`` holds that run's error at the start and
    after every single-factor update. ``restarts_used`` counts the runs made; ``rejected`` the
    updates whose solve would have raised the error through round-off and were discarded.
    """

    twiddle: np.ndarray
    rel_error: float
    history: tuple[float, ...]
    restarts_used: int
    rejected: int = 0


@dataclass(frozen=True, eq=False)
class _Plan:
    """How one factor's least-squares problem splits into independent sub-problems."""

    rows: np.ndarray  # (groups, r): row of B_k of each group's entries, per a
    cols: np.ndarray  # (groups, s): column of B_k, per c
    alone: np.ndarray  # groups that interact with no other
    joint: tuple[np.ndarray, ...]  # interacting group sets, one (count, size) array per size > 1


def _factor_groups(f: Factor) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = f.rows_cols()
    shaped_rows = rows.reshape(f.nb * f.t, f.r, f.s)
    shaped_cols = cols.reshape(f.nb * f.t, f.r, f.s)
    return shaped_rows[:, :, 0], shaped_cols[:, 0, :]


def _components(adjacency: np.ndarray) -> list[list[int]]:
    """Connected components of a symmetric boolean adjacency matrix, each sorted."""
    n = adjacency.shape[0]
    label = np.full(n, -1)
    comps: list[list[int]] = []
    for seed in range(n):
        if label[seed] >= 0:
            continue
        label[seed] = len(comps)
        members = [seed]
        frontier = np.array([seed])
        while frontier.size:
            frontier = np.flatnonzero(adjacency[frontier].any(axis=0) & (label < 0))
            label[frontier] = len(comps)
            members.extend(int(g) for g in frontier)
        comps.append(sorted(members))
    return comps


@lru_cache(maxsize=32)
def _plans(chain: Chain) -> tuple[_Plan, ...]:
    supports = [f.support().astype(np.float64) for f in chain.factors]
    n = len(supports)
    prefix: list[np.ndarray] = [np.eye(chain.in_features)]
    for k in range(n - 1):
        prefix.append(np.minimum(supports[k] @ prefix[k], 1.0))
    suffix: list[np.ndarray] = [np.eye(chain.out_features)] * n
    for k in range(n - 2, -1, -1):
        suffix[k] = np.minimum(suffix[k + 1] @ supports[k + 1], 1.0)
    plans = []
    for k, f in enumerate(chain.factors):
        rows, cols = _factor_groups(f)
        groups = rows.shape[0]
        row_of = np.zeros((groups, f.p))
        row_of[np.arange(groups)[:, None], rows] = 1.0
        col_of = np.zeros((groups, f.q))
        col_of[np.arange(groups)[:, None], cols] = 1.0
        left = row_of @ suffix[k].T  # group -> outputs its rows reach
        right = col_of @ prefix[k]  # group -> inputs its columns read
        adjacency = ((left @ left.T) > 0) & ((right @ right.T) > 0)
        comps = _components(adjacency)
        alone = np.array([c[0] for c in comps if len(c) == 1], dtype=np.int64)
        sizes = sorted({len(c) for c in comps if len(c) > 1})
        joint = tuple(np.array([c for c in comps if len(c) == size]) for size in sizes)
        plans.append(_Plan(rows, cols, alone, joint))
    return tuple(plans)


def solve_groups(chain: Chain | Sequence[Sequence[int]], k: int) -> tuple[tuple[int, ...], ...]:
    """The independent sub-problems of an update of factor ``k``: sets of groups (group
    ``b * t + d`` holds block ``b``'s entries on diagonal position ``d``) solved together."""
    chain = Chain.from_list(chain)
    if not 0 <= k < len(chain):
        raise ALSError(f"factor index must be in range(0, {len(chain)}), not {k!r}")
    plan = _plans(chain)[k]
    sets = [(int(g),) for g in plan.alone]
    sets += [tuple(int(g) for g in c) for comps in plan.joint for c in comps]
    return tuple(sorted(sets))


def _psd_pinv(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors and pseudo-inverted eigenvalues of a batch of symmetric PSD matrices."""
    values, vectors = np.linalg.eigh(gram)
    cutoff = values[:, -1:] * gram.shape[-1] * np.finfo(np.float64).eps
    keep = values > np.maximum(cutoff, 0.0)
    return vectors, np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)


def _solve(
    w: np.ndarray, left: np.ndarray | None, right: np.ndarray | None, f: Factor, plan: _Plan
) -> np.ndarray:
    """Parameters of ``f`` minimising ``||w - left B right||`` (``None`` is the identity)."""
    theta = np.zeros((f.nb * f.t, f.r, f.s))
    if plan.alone.size:
        groups = plan.alone
        m = groups.size
        if left is None:
            part = w[plan.rows[groups]]  # (m, r, in)
        else:
            left_pinv = np.linalg.pinv(np.moveaxis(left[:, plan.rows[groups]], 1, 0))
            part = (left_pinv.reshape(m * f.r, -1) @ w).reshape(m, f.r, -1)
        if right is None:
            cols = np.broadcast_to(plan.cols[groups][:, None, :], (m, f.r, f.s))
            theta[groups] = np.take_along_axis(part, cols, axis=2)
        else:
            right_pinv = np.linalg.pinv(right[plan.cols[groups], :])  # (m, in, s)
            theta[groups] = np.einsum("mri,mis->mrs", part, right_pinv)
    left = np.eye(w.shape[0]) if left is None else left
    right = np.eye(w.shape[1]) if right is None else right
    if plan.joint:
        gram_left = left.T @ left
        gram_right = right @ right.T
        rows = np.broadcast_to(plan.rows[:, :, None], theta.shape).reshape(len(theta), -1)
        cols = np.broadcast_to(plan.cols[:, None, :], theta.shape).reshape(len(theta), -1)
        systems = []
        for comps in plan.joint:
            r_idx = rows[comps].reshape(len(comps), -1)
            c_idx = cols[comps].reshape(len(comps), -1)
            gram = (
                gram_left[r_idx[:, :, None], r_idx[:, None, :]]
                * gram_right[c_idx[:, :, None], c_idx[:, None, :]]
            )
            systems.append((comps, r_idx, c_idx, *_psd_pinv(gram)))
        # Normal equations square the conditioning; a second solve on the true residual
        # (corrected semi-normal equations) wins the lost accuracy back.
        residual = w
        for step in range(2):
            if step:
                residual = w - left @ f.materialize(theta.reshape(-1)) @ right
            target = (left.T @ residual) @ right.T
            for comps, r_idx, c_idx, vectors, inverse in systems:
                coeffs = np.einsum("mji,mj->mi", vectors, target[r_idx, c_idx]) * inverse
                x = np.einsum("mij,mj->mi", vectors, coeffs)
                theta[comps] += x.reshape((*comps.shape, f.r, f.s))
    return theta.reshape(-1)


def _times(f: Factor, theta: np.ndarray, x: np.ndarray | None) -> np.ndarray:
    """``B @ x`` for the factor ``B`` of ``theta`` (``None`` is the identity), sparsely."""
    if x is None:
        return f.materialize(theta)
    th = theta.reshape(f.nb, f.t, f.r, f.s)
    y = np.einsum("bdac,bcdn->badn", th, x.reshape(f.nb, f.s, f.t, -1))
    return y.reshape(f.p, -1)


def _times_right(x: np.ndarray | None, f: Factor, theta: np.ndarray) -> np.ndarray:
    """``x @ B`` for the factor ``B`` of ``theta`` (``None`` is the identity)."""
    if x is None:
        return f.materialize(theta)
    th = theta.reshape(f.nb, f.t, f.r, f.s)
    z = np.einsum("nbad,bdac->nbcd", x.reshape(-1, f.nb, f.r, f.t), th)
    return z.reshape(-1, f.q)


def _mul(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a @ b


def _as_matrix(w: object) -> np.ndarray:
    if hasattr(w, "detach"):  # a torch tensor, without importing torch
        w = w.detach().cpu().numpy()
    array = np.asarray(w)
    if array.dtype.kind not in "biuf":
        raise ALSError(f"W must be a real matrix, not an array of dtype {array.dtype}")
    if array.ndim != 2:
        raise ALSError(f"W must be a 2-D matrix, not an array of shape {array.shape}")
    array = array.astype(np.float64)
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ALSError(f"W must be finite, not contain {bad} NaN or infinite entries")
    return array


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ALSError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def _rel_error(w: np.ndarray, approx: np.ndarray | None, norm: float) -> float:
    residual = w if approx is None else w - approx
    return float(np.linalg.norm(residual) / norm)


def solve_factor(
    w: object, chain: Chain | Sequence[Sequence[int]], twiddle: np.ndarray, k: int
) -> np.ndarray:
    """The minimum-norm least-squares parameters of factor ``k`` given the other factors of
    ``twiddle``: minimises ``||W - B_N ... B_1||_F`` over factor ``k`` alone."""
    chain = Chain.from_list(chain)
    w = _check_shape(_as_matrix(w), chain)
    if not 0 <= k < len(chain):
        raise ALSError(f"factor index must be in range(0, {len(chain)}), not {k!r}")
    thetas = chain.split(_check_twiddle(twiddle, chain, "twiddle"))
    left = right = None
    for j in range(len(chain) - 1, k, -1):
        left = _times_right(left, chain.factors[j], thetas[j])
    for j in range(k):
        right = _times(chain.factors[j], thetas[j], right)
    return _solve(w, left, right, chain.factors[k], _plans(chain)[k])


def _check_shape(w: np.ndarray, chain: Chain) -> np.ndarray:
    expected = (chain.out_features, chain.in_features)
    if w.shape != expected:
        raise ALSError(f"W must have shape {expected} to match the chain, not {w.shape}")
    return w


def _check_twiddle(twiddle: object, chain: Chain, name: str) -> np.ndarray:
    if hasattr(twiddle, "detach"):
        twiddle = twiddle.detach().cpu().numpy()
    array = np.asarray(twiddle)
    if array.dtype.kind not in "biuf" or array.shape != (chain.params,):
        raise ALSError(
            f"{name} must be a real vector of shape ({chain.params},) to match the chain, "
            f"not {array.dtype} of shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ALSError(f"{name} must be finite, not contain NaN or infinite entries")
    return array.astype(np.float64)


def _random_start(chain: Chain, rng: np.random.Generator, norm: float) -> list[np.ndarray]:
    """Gaussian factors scaled equally so that the product's norm equals ``norm``."""
    thetas = [rng.standard_normal(f.params) / np.sqrt(f.s) for f in chain.factors]
    product = np.linalg.norm(chain.materialize(np.concatenate(thetas)))
    if product > 0:
        scale = (norm / product) ** (1.0 / len(chain))
        thetas = [th * scale for th in thetas]
    return thetas


@dataclass
class _Run:
    history: list[float]
    best: float
    best_thetas: list[np.ndarray]
    rejected: int = 0


def _run(
    w: np.ndarray,
    chain: Chain,
    thetas: list[np.ndarray],
    norm: float,
    sweeps: int,
    tol: float,
    callback: Callable[[int, int, float], object] | None,
) -> _Run:
    factors = chain.factors
    plans = _plans(chain)
    n = len(factors)
    th = list(thetas)  # current parameters, replaced (never mutated) by updates
    # pre[k] = B_{k-1} ... B_1 and suf[k] = B_N ... B_{k+1}; None stands for the identity.
    pre: list[np.ndarray | None] = [None] * n
    suf: list[np.ndarray | None] = [None] * n
    for k in range(n - 2, -1, -1):
        suf[k] = _times_right(suf[k + 1], factors[k + 1], th[k + 1])
    err = _rel_error(w, _mul(suf[0], factors[0].materialize(th[0])), norm)
    run = _Run([err], err, list(th))

    def evaluate(k: int, forward: bool) -> tuple[float, np.ndarray]:
        """Error with the current factors, and the product the sweep carries on with."""
        if forward:
            moved = _times(factors[k], th[k], pre[k])
            return _rel_error(w, _mul(suf[k], moved), norm), moved
        moved = _times_right(suf[k], factors[k], th[k])
        return _rel_error(w, _mul(moved, pre[k]), norm), moved

    def update(sweep: int, k: int, forward: bool) -> None:
        nonlocal err
        old = th[k]
        th[k] = _solve(w, suf[k], pre[k], factors[k], plans[k])
        new, moved = evaluate(k, forward)
        if new > err * (1 + GUARD_RTOL) + GUARD_ATOL:  # round-off beat the exact solve
            run.rejected += 1
            th[k] = old
            _, moved = evaluate(k, forward)
        else:
            err = new
        if forward and k + 1 < n:
            pre[k + 1] = moved
        elif not forward and k > 0:
            suf[k - 1] = moved
        run.history.append(err)
        if err < run.best:
            run.best, run.best_thetas = err, list(th)
        if callback is not None:
            callback(sweep, k, err)

    for sweep in range(sweeps):
        start = err
        first = 0 if sweep == 0 else 1  # factor 0 was just updated by the previous sweep
        if first == 1 and n > 1:
            pre[1] = factors[0].materialize(th[0])
        for k in range(first, n):
            if err <= NOISE_FLOOR:
                return run
            update(sweep, k, forward=True)
        if n > 1:
            suf[n - 2] = factors[n - 1].materialize(th[n - 1])
        for k in range(n - 2, -1, -1):
            if err <= NOISE_FLOOR:
                return run
            update(sweep, k, forward=False)
        if n == 1 or start - err <= tol * start:
            break
    return run


def als_fit(
    w: object,
    chain: Chain | Sequence[Sequence[int]],
    *,
    sweeps: int = 5,
    restarts: int = 1,
    tol: float = 1e-9,
    target: float = 0.0,
    seed: int | None = 0,
    init: np.ndarray | None = None,
    callback: Callable[[int, int, float], object] | None = None,
) -> ALSResult:
    """Fit ``chain`` to the dense ``out x in`` matrix ``w`` by alternating least squares.

    ``w`` and ``init`` may be numpy arrays or torch tensors. Each run starts from ``init`` (first
    run only, e.g. a trained layer's twiddle) or from random
    factors (a numpy Generator seeded by ``seed``) and makes up to ``sweeps`` sweeps, stopping
    early when a sweep lowers the error by less than ``tol`` times its starting value. Up to
    ``restarts`` runs are made, stopping once the error is at most ``target``; the best is
    returned. ``callback(sweep, factor_index, rel_error)`` is called after every update.
    """
    chain = Chain.from_list(chain)
    w = _check_shape(_as_matrix(w), chain)
    sweeps = _check_count("sweeps", sweeps, 1)
    restarts = _check_count("restarts", restarts, 1)
    for name, value in (("tol", tol), ("target", target)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ALSError(f"{name} must be a non-negative number, not {value!r}")
    start = None if init is None else _check_twiddle(init, chain, "init")
    norm = float(np.linalg.norm(w))
    if norm == 0.0:  # the zero chain is exact
        return ALSResult(np.zeros(chain.params), 0.0, (0.0,), 0)

    rng = np.random.default_rng(seed)
    best: _Run | None = None
    rejected = 0
    used = 0
    for attempt in range(restarts):
        if attempt == 0 and start is not None:
            thetas = [th.copy() for th in chain.split(start)]
        else:
            thetas = _random_start(chain, rng, norm)
        run = _run(w, chain, thetas, norm, sweeps, float(tol), callback)
        used += 1
        rejected += run.rejected
        if best is None or run.best < best.best:
            best = run
        if best.best <= target:
            break
    assert best is not None
    twiddle = np.concatenate(best.best_thetas)
    return ALSResult(twiddle, best.best, tuple(best.history), used, rejected)


def svd_error(w: object, params: int) -> tuple[int, float]:
    """Rank ``floor(params / (out + in))`` truncated SVD of ``w`` (the rank whose factors fit in
    ``params`` numbers) and its relative Frobenius error."""
    w = _as_matrix(w)
    params = _check_count("params", params, 0)
    out, inn = w.shape
    rank = min(params // (out + inn), out, inn)
    values = np.linalg.svd(w, compute_uv=False)
    total = float(np.linalg.norm(values))
    if total == 0.0:
        return rank, 0.0
    return rank, float(np.linalg.norm(values[rank:]) / total)


def describe_fit(w: object, chain: Chain | Sequence[Sequence[int]], result: ALSResult) -> str:
    """One line: the fit's error beside a truncated SVD with no more parameters."""
    chain = Chain.from_list(chain)
    w = _check_shape(_as_matrix(w), chain)
    rank, error = svd_error(w, chain.params)
    svd_params = rank * (chain.out_features + chain.in_features)
    return (
        f"ALS relative error {result.rel_error:.4g} with {chain.params:,} params; "
        f"truncated SVD rank {rank} {error:.4g} with {svd_params:,} params"
    )
