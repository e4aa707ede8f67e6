# amaranth: UnusedElaboratable=no
"""FactorStage against the golden model: bit-exact outputs, stream rules, II and latency."""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from compiler.golden import apply_factor
from debut.chain import Factor
from debut.fixed import Fixed, bits_for_range, requantize
from hw.factor_stage import SINGLE_SLOT_MIN_II, FactorStage

S8, U8, S6, U4 = Fixed(8, 4, True), Fixed(8, 4, False), Fixed(6, 2, True), Fixed(4, 0, False)


def reference(factor, weights, x, *, shift, out_format, bias=None, relu=False):
    acc = apply_factor(factor, weights, x)
    if bias is not None:
        acc = acc + bias
    if relu:
        acc = np.maximum(acc, 0)
    return requantize(acc, shift, out_format)[0]


def acc_width_for(factor, weights, in_format, shift, bias=None):
    """A worst-case accumulator width from the formats' ranges (as the compiler sizes it)."""
    w = np.abs(np.asarray(weights)).max(initial=0)
    x = max(abs(in_format.min_int), in_format.max_int)
    b = 0 if bias is None else int(np.abs(bias).max())
    top = factor.s * w * x + b + (1 << (shift - 1) if shift > 0 else 0)
    return bits_for_range(-top, top)


def edge_inputs(fmt: Fixed, q: int, rng) -> np.ndarray:
    rows = [
        np.full(q, fmt.max_int),
        np.full(q, fmt.min_int),
        np.zeros(q, dtype=np.int64),
        rng.choice([fmt.min_int, fmt.max_int], size=q),
    ]
    return np.array(rows, dtype=np.int64)


def random_case(spec, *, in_format, out_format, weight_format=S8, shift, seed, n=24, bias=False):
    rng = np.random.default_rng(seed)
    factor = Factor.checked(spec)
    wf = weight_format
    weights = rng.integers(wf.min_int, wf.max_int + 1, size=factor.params)
    weights[: factor.s] = wf.max_int  # edge weights too
    weights[factor.s : 2 * factor.s] = wf.min_int
    b = rng.integers(-(1 << 12), 1 << 12, size=factor.p) if bias else None
    x = rng.integers(in_format.min_int, in_format.max_int + 1, size=(n, factor.q))
    x = np.concatenate([edge_inputs(in_format, factor.q, rng), x])
    return factor, weights, b, x


def simulate(dut: FactorStage, x: np.ndarray, *, in_idle=0.0, out_stall=0.0, seed=0):
    """Stream the rows of ``x`` through ``dut``; returns (outputs, input cycles, output cycles).
    Checks the stream rules on the output: valid held and payload stable until transfer."""
    rng = random.Random(seed)
    q, p = len(dut.i.payload), len(dut.o.payload)
    in_w = dut.i.payload.as_value().shape().width // q
    out_w = dut.o.payload.as_value().shape().width // p
    out_signed = dut.o.payload[0].shape().signed
    outputs, in_cycles, out_cycles = [], [], []

    def pack(row):
        return sum((int(v) & ((1 << in_w) - 1)) << (k * in_w) for k, v in enumerate(row))

    def unpack(raw):
        vals = [(raw >> (k * out_w)) & ((1 << out_w) - 1) for k in range(p)]
        if out_signed:
            vals = [v - (1 << out_w) if v >> (out_w - 1) else v for v in vals]
        return vals

    async def bench(ctx):
        sent, cycle, held, offered = 0, 0, None, False
        limit = (len(x) + 2) * (dut.latency + dut.ii) * 20 + 200
        while len(outputs) < len(x):
            assert cycle < limit, "timeout"
            # once offered, a vector stays valid until it transfers
            if sent < len(x) and (offered or rng.random() >= in_idle):
                offered = True
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload.as_value(), pack(x[sent]))
            else:
                ctx.set(dut.i.valid, 0)
            ctx.set(dut.o.ready, 0)
            o_valid = ctx.get(dut.o.valid)
            ctx.set(dut.o.ready, int(rng.random() >= out_stall))
            assert ctx.get(dut.o.valid) == o_valid, "o.valid depends on o.ready"
            raw = ctx.get(dut.o.payload.as_value())
            if held is not None:
                assert o_valid and raw == held, "output dropped or changed before its transfer"
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                in_cycles.append(cycle)
                sent += 1
                offered = False
            held = None
            if o_valid:
                if ctx.get(dut.o.ready):
                    outputs.append(unpack(raw))
                    out_cycles.append(cycle)
                else:
                    held = raw
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(outputs, dtype=np.int64), in_cycles, out_cycles


def make(
    factor,
    weights,
    *,
    in_format,
    out_format,
    shift,
    multipliers,
    bias=None,
    relu=False,
    weight_format=S8,
):
    return FactorStage(
        factor,
        weights,
        in_format=in_format,
        weight_format=weight_format,
        out_format=out_format,
        shift=shift,
        acc_width=acc_width_for(factor, weights, in_format, shift, bias),
        multipliers=multipliers,
        bias=bias,
        relu=relu,
    )


# (factor, multipliers): folded (M = 1, dividing and not dividing p*s) and fully parallel
SCHEDULES = [
    ((12, 8, 3, 2, 2), 1),
    ((12, 8, 3, 2, 2), 5),
    ((12, 8, 3, 2, 2), 8),
    ((12, 8, 3, 2, 2), 24),
    ((6, 9, 2, 3, 1), 1),
    ((6, 9, 2, 3, 1), 4),
    ((6, 9, 2, 3, 1), 18),
    ((16, 16, 2, 2, 4), 7),
    ((4, 4, 4, 4, 1), 16),
    # dense (one block, t = 1): the rotating input buffer, chunks wrapping across rows
    ((4, 4, 4, 4, 1), 3),
    ((5, 7, 5, 7, 1), 4),
    ((10, 24, 10, 24, 1), 7),
    ((3, 20, 3, 20, 1), 1),
    # II >= SINGLE_SLOT_MIN_II: a one-slot output queue
    ((16, 16, 16, 16, 1), 2),
    # several sequencers (more than CLUSTER_MULTIPLIERS multipliers), with carried split
    # outputs and with partial sums
    ((32, 32, 4, 4, 2), 10),
    ((10, 40, 10, 40, 1), 12),
]


@pytest.mark.parametrize(("spec", "multipliers"), SCHEDULES)
def test_bit_exact_ii_and_latency(spec, multipliers):
    factor, w, _, x = random_case(spec, in_format=S8, out_format=S8, shift=5, seed=multipliers)
    dut = make(factor, w, in_format=S8, out_format=S8, shift=5, multipliers=multipliers)
    assert dut.multipliers == multipliers
    assert dut.ii == math.ceil(factor.p * factor.s / multipliers)
    y, in_cycles, out_cycles = simulate(dut, x)
    np.testing.assert_array_equal(y, reference(factor, w, x, shift=5, out_format=S8))
    # no stalls: one vector every `interval` cycles from the first (II unless the queue has a
    # single slot), each out exactly `latency` later
    assert dut.interval == (dut.ii if dut.ii < SINGLE_SLOT_MIN_II else dut.latency + 1)
    assert np.diff(in_cycles).tolist() == [dut.interval] * (len(x) - 1)
    assert (np.array(out_cycles) - np.array(in_cycles)).tolist() == [dut.latency] * len(x)


FORMATS = [
    # in, out, shift: signedness combinations, positive / zero / negative shifts
    (S8, S8, 7),
    (U8, S8, 3),
    (S8, U8, 6),
    (U8, U8, 0),
    (S6, S8, -2),
    (U4, U4, -1),
    (S6, U4, 1),
]


@pytest.mark.parametrize(("in_format", "out_format", "shift"), FORMATS)
@pytest.mark.parametrize("multipliers", [3, 12])
def test_formats_and_shifts(in_format, out_format, shift, multipliers):
    spec = (6, 9, 2, 3, 1)
    factor, w, _, x = random_case(
        spec,
        in_format=in_format,
        out_format=out_format,
        weight_format=S6,
        shift=shift,
        seed=shift + 10,
    )
    dut = make(
        factor,
        w,
        in_format=in_format,
        out_format=out_format,
        shift=shift,
        multipliers=multipliers,
        weight_format=S6,
    )
    y, _, _ = simulate(dut, x, in_idle=0.3, out_stall=0.3, seed=multipliers)
    np.testing.assert_array_equal(y, reference(factor, w, x, shift=shift, out_format=out_format))


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize(("out_format", "multipliers"), [(S8, 5), (U8, 24), (S6, 1)])
def test_bias_and_relu(relu, out_format, multipliers):
    spec, shift = (12, 8, 3, 2, 2), 6
    factor, w, b, x = random_case(
        spec, in_format=S8, out_format=out_format, shift=shift, seed=7, bias=True
    )
    dut = make(
        factor,
        w,
        in_format=S8,
        out_format=out_format,
        shift=shift,
        multipliers=multipliers,
        bias=b,
        relu=relu,
    )
    y, _, _ = simulate(dut, x, in_idle=0.2, out_stall=0.2, seed=3)
    ref = reference(factor, w, x, shift=shift, out_format=out_format, bias=b, relu=relu)
    np.testing.assert_array_equal(y, ref)


def test_saturation_both_ways():
    spec, shift = (6, 9, 2, 3, 1), 2
    factor, w, _, x = random_case(spec, in_format=S8, out_format=S6, shift=shift, seed=11)
    acc = apply_factor(factor, w, x)
    _, saturated = requantize(acc, shift, S6)
    assert saturated > len(x)  # the case must actually saturate, high and low
    ref = reference(factor, w, x, shift=shift, out_format=S6)
    assert (ref == S6.max_int).any() and (ref == S6.min_int).any()
    dut = make(factor, w, in_format=S8, out_format=S6, shift=shift, multipliers=7)
    y, _, _ = simulate(dut, x, in_idle=0.1, out_stall=0.5, seed=5)
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize(("spec", "multipliers"), [((12, 8, 3, 2, 2), 24), ((12, 8, 3, 2, 2), 5)])
@pytest.mark.parametrize(("in_idle", "out_stall"), [(0.0, 0.6), (0.5, 0.0), (0.4, 0.4)])
def test_random_stalls_many_in_flight(spec, multipliers, in_idle, out_stall):
    factor, w, b, x = random_case(
        spec, in_format=U8, out_format=S8, shift=4, seed=2, n=60, bias=True
    )
    dut = make(
        factor, w, in_format=U8, out_format=S8, shift=4, multipliers=multipliers, bias=b, relu=True
    )
    y, in_cycles, out_cycles = simulate(dut, x, in_idle=in_idle, out_stall=out_stall, seed=9)
    ref = reference(factor, w, x, shift=4, out_format=S8, bias=b, relu=True)
    np.testing.assert_array_equal(y, ref)
    # several vectors were in flight at once
    in_flight = max(
        sum(1 for k in range(len(x)) if in_cycles[k] <= c < out_cycles[k]) for c in in_cycles
    )
    assert in_flight >= 2


@pytest.mark.sim
@pytest.mark.parametrize("multipliers", [1, 2, 9, 13, 31, 64])
def test_larger_factor(multipliers):
    spec = (32, 32, 4, 4, 2)
    factor, w, b, x = random_case(
        spec, in_format=S8, out_format=S8, shift=8, seed=multipliers, n=40, bias=True
    )
    dut = make(
        factor, w, in_format=S8, out_format=S8, shift=8, multipliers=multipliers, bias=b, relu=True
    )
    y, _, _ = simulate(dut, x, in_idle=0.3, out_stall=0.3, seed=multipliers)
    np.testing.assert_array_equal(
        y, reference(factor, w, x, shift=8, out_format=S8, bias=b, relu=True)
    )


@pytest.mark.parametrize("multipliers", [4, 18])
def test_converts_to_verilog(multipliers):
    factor, w, b, _ = random_case(
        (6, 9, 2, 3, 1), in_format=S8, out_format=U8, shift=3, seed=0, bias=True
    )
    dut = make(
        factor, w, in_format=S8, out_format=U8, shift=3, multipliers=multipliers, bias=b, relu=True
    )
    text = verilog.convert(dut, name="factor_stage")
    assert "module factor_stage" in text
    assert len(re.findall(r" \* ", text)) == multipliers  # one multiply per multiplier


def _kwargs(**changes):
    factor = Factor.checked((6, 9, 2, 3, 1))
    kwargs = dict(
        factor=factor,
        weights=np.ones(factor.params, dtype=np.int64),
        in_format=S8,
        weight_format=S8,
        out_format=S8,
        shift=2,
        acc_width=16,
        multipliers=3,
    )
    kwargs.update(changes)
    return kwargs


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"multipliers": 0}, "multipliers must be in 1..18, not 0"),
        ({"multipliers": 19}, "multipliers must be in 1..18, not 19"),
        ({"multipliers": 2.0}, "multipliers must be in 1..18, not 2.0"),
        (
            {"acc_width": 8},
            "acc_width must be at least 10 for these weights, bias and formats, not 8",
        ),
        (
            {"weights": np.ones(17, dtype=np.int64)},
            "weights must be 18 integers (shape (18,)), not int64 of shape (17,)",
        ),
        ({"weights": np.full(18, 200)}, "weights must lie in -128..127 (s8.4), not 200..200"),
        ({"weight_format": U8}, "weight_format must be signed, not u8.4"),
        (
            {"bias": np.zeros(5, dtype=np.int64)},
            "bias must be 6 integers (shape (6,)), not int64 of shape (5,)",
        ),
    ],
)
def test_constructor_errors(changes, message):
    with pytest.raises(ValueError) as info:
        FactorStage(**_kwargs(**changes))
    assert str(info.value) == message


@pytest.mark.parametrize(("multipliers", "model"), [(4, (5, 11, 4)), (18, (1, 7, 18))])
def test_analytic_model(multipliers, model):
    dut = FactorStage(**_kwargs(multipliers=multipliers))
    assert (dut.ii, dut.latency, dut.multipliers) == model
    Fragment.get(dut, None)  # elaborates (and marks as used)
