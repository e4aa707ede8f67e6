"""StreamRegister and HalfRateRegister: every transfer passes once and in order, one cycle later,
at one per cycle (one per two cycles); their handshake outputs are registers (no combinational
path from o.ready to i.ready)."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hw.stream_register import HalfRateRegister, StreamRegister


@pytest.mark.parametrize(("kind", "rate"), [(StreamRegister, 1), (HalfRateRegister, 2)])
@pytest.mark.parametrize(("in_idle", "out_stall"), [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.3)])
def test_passes_every_transfer_in_order(kind, rate, in_idle, out_stall):
    dut = kind(12)
    rng = random.Random(7)
    sent = [rng.randrange(1 << 12) for _ in range(200)]
    got, in_cycles, out_cycles = [], [], []

    async def bench(ctx):
        n, cycle = 0, 0
        offered = False
        while len(got) < len(sent):
            assert cycle < 5000, "timeout"
            if n < len(sent) and (offered or rng.random() >= in_idle):
                offered = True
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, sent[n])
            else:
                ctx.set(dut.i.valid, 0)
            ctx.set(dut.o.ready, int(rng.random() >= out_stall))
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                in_cycles.append(cycle)
                n += 1
                offered = False
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                got.append(ctx.get(dut.o.payload))
                out_cycles.append(cycle)
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == sent
    assert all(o > i for i, o in zip(in_cycles, out_cycles, strict=True))
    if in_idle == out_stall == 0:  # back to back: one per `rate` cycles, one cycle later
        assert in_cycles == list(range(0, rate * len(sent), rate))
        assert out_cycles == [c + 1 for c in in_cycles]


@pytest.mark.parametrize("kind", [StreamRegister, HalfRateRegister])
def test_ready_does_not_follow_o_ready_combinationally(kind):
    """i.ready is a register: changing o.ready alone, within a cycle, never changes it."""
    dut = kind(4)
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        for cycle in range(40):
            ctx.set(dut.i.payload, cycle & 15)
            before = []
            for ready in (0, 1, 0):
                ctx.set(dut.o.ready, ready)
                before.append(ctx.get(dut.i.ready))
            seen.append(before)
            ctx.set(dut.o.ready, cycle % 3 == 0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert all(len(set(values)) == 1 for values in seen)
    assert {values[0] for values in seen} == {0, 1}  # it does stall and recover
