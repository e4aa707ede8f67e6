# amaranth: UnusedElaboratable=no
"""SharedStage against the golden model: runs of factors on one multiplier, bit-exact, with the
stream rules, its interval and latency, under random idles and backpressure."""

from __future__ import annotations

import numpy as np
import pytest

from debut.chain import Factor
from debut.fixed import Fixed
from hw.factor_spec import FactorSpec
from hw.shared_stage import HAZARD_BUBBLES, SharedStage
from tests.hw.test_factor_stage import acc_width_for, edge_inputs, reference, simulate

S8, U8, S6, U4 = Fixed(8, 4, True), Fixed(8, 4, False), Fixed(6, 2, True), Fixed(4, 0, False)
S16 = Fixed(16, 8, True)


def chain_case(shapes, formats, shifts, *, seed, relu_last=False, bias_last=False, n=12):
    """FactorSpecs for consecutive factors ``shapes`` with ``formats`` (one more than the
    factors: the input's, then each factor's output), random weights, and input rows."""
    rng = np.random.default_rng(seed)
    specs = []
    for k, shape in enumerate(shapes):
        factor = Factor.checked(shape)
        wf = S8
        weights = rng.integers(wf.min_int, wf.max_int + 1, size=factor.params)
        last = k == len(shapes) - 1
        bias = rng.integers(-(1 << 10), 1 << 10, size=factor.p) if last and bias_last else None
        specs.append(
            FactorSpec(
                factor,
                weights,
                in_format=formats[k],
                weight_format=wf,
                out_format=formats[k + 1],
                shift=shifts[k],
                acc_width=acc_width_for(factor, weights, formats[k], shifts[k], bias),
                bias=bias,
                relu=last and relu_last,
            )
        )
    q, fmt = specs[0].factor.q, formats[0]
    x = rng.integers(fmt.min_int, fmt.max_int + 1, size=(n, q))
    return specs, np.concatenate([edge_inputs(fmt, q, rng), x])


def golden(specs, x):
    for spec in specs:
        x = reference(
            spec.factor,
            spec.weights,
            x,
            shift=spec.shift,
            out_format=spec.out_format,
            bias=spec.bias,
            relu=spec.relu,
        )
    return x


CASES = [
    # (shapes, formats, shifts)
    ([(12, 8, 3, 2, 2), (12, 12, 2, 2, 3)], [S8, S8, S8], [5, 6]),
    ([(6, 9, 2, 3, 1), (4, 6, 2, 3, 1), (8, 4, 4, 2, 1)], [U8, S8, U4, S8], [3, 4, -1, 2]),
    (
        [(8, 8, 2, 2, 2), (8, 8, 2, 2, 2), (8, 8, 2, 2, 2), (4, 8, 4, 8, 1)],
        [S6, S8, S8, S8, S8],
        [1, 6, 7, 7],
    ),
    ([(5, 7, 5, 7, 1)], [S8, U8], [4]),  # one dense factor alone
    # one output in the middle: the next factor's first read is the last write (the hazard)
    ([(1, 4, 1, 4, 1), (3, 1, 3, 1, 1), (1, 3, 1, 3, 1)], [S8, S8, S8, S8], [4, 3, 5]),
    ([(10, 3, 10, 3, 1), (3, 10, 3, 10, 1)], [S16, S8, S16], [9, 2]),  # 16-bit ends
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_bit_exact_interval_and_latency(case):
    shapes, formats, shifts = CASES[case]
    specs, x = chain_case(shapes, formats, shifts, seed=case, relu_last=case % 2 == 1)
    dut = SharedStage(specs)
    assert dut.multipliers == 1
    assert dut.steps == sum(s.products for s in specs) + HAZARD_BUBBLES * (len(specs) - 1)
    y, in_cycles, out_cycles = simulate(dut, x)
    np.testing.assert_array_equal(y, golden(specs, x))
    assert np.diff(in_cycles).tolist() == [dut.interval] * (len(x) - 1)
    assert (np.array(out_cycles) - np.array(in_cycles)).tolist() == [dut.latency] * len(x)


@pytest.mark.parametrize("seed", range(3))
def test_bit_exact_with_stalls_bias_and_relu(seed):
    shapes = [(16, 16, 2, 2, 4), (16, 16, 4, 4, 1), (10, 16, 10, 16, 1)]
    formats = [U8, S8, S8, U8]
    specs, x = chain_case(shapes, formats, [6, 7, 7], seed=seed, relu_last=True, bias_last=True)
    dut = SharedStage(specs)
    y, _, _ = simulate(dut, x, in_idle=0.3, out_stall=0.4, seed=seed)
    np.testing.assert_array_equal(y, golden(specs, x))


def test_saturation_in_the_scratch_memory():
    """Intermediate values that saturate their format (the scratch memory keeps the saturated
    value, not the accumulator's)."""
    shapes = [(4, 4, 4, 4, 1), (4, 4, 4, 4, 1)]
    specs, x = chain_case(shapes, [S8, U4, S8], [0, 0], seed=7)
    y, _, _ = simulate(SharedStage(specs), x)
    np.testing.assert_array_equal(y, golden(specs, x))
    mid = golden(specs[:1], x)
    assert (mid == U4.max_int).any() and (mid == U4.min_int).any()


def test_rejects_factors_that_do_not_chain():
    specs, _ = chain_case([(12, 8, 3, 2, 2)], [S8, S8], [5], seed=0)
    other, _ = chain_case([(6, 9, 2, 3, 1)], [S8, S8], [5], seed=0)
    with pytest.raises(ValueError, match=r"outputs 12 x .* but the next takes 9"):
        SharedStage([specs[0], other[0]])
    with pytest.raises(ValueError, match="one or more"):
        SharedStage([])
