import itertools
import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from debut.fixed import Fixed
from hw.deserializer import Deserializer
from hw.serializer import Serializer
from tests.streams import receive, send


def beats_of(vector, per_beat):
    beats = []
    for start in range(0, len(vector), per_beat):
        lanes = vector[start : start + per_beat]
        lanes = lanes + [0] * (per_beat - len(lanes))
        beats.append({"data": lanes, "first": start == 0, "last": start + per_beat >= len(vector)})
    return beats


@pytest.mark.parametrize(("length", "per_beat"), [(10, 3), (8, 8), (7, 1), (64, 2)])
@pytest.mark.parametrize("fmt", [Fixed(8, 3, True), Fixed(5, 0, False)])
def test_deserialize_then_serialize_round_trip(length, per_beat, fmt):
    rng = random.Random(length * 100 + per_beat)
    vectors = [[rng.randint(fmt.min_int, fmt.max_int) for _ in range(length)] for _ in range(12)]
    des, ser = Deserializer(fmt, length, per_beat), Serializer(fmt, length, per_beat)
    m = Module()
    m.submodules.des, m.submodules.ser = des, ser
    wiring.connect(m, des.o, ser.i)
    beats_in = [b for v in vectors for b in beats_of(v, per_beat)]
    # a stray beat with no 'first' before the first vector must be dropped at the next 'first'
    junk = {"data": [1] * per_beat, "first": 0, "last": 0}
    result = {}

    async def source(ctx):
        await send(ctx, des.i, [junk, *beats_in], rng, idle=0.3)

    async def sink(ctx):
        result["beats"] = await receive(ctx, ser.o, len(beats_in), rng, stall=0.3)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    got = [
        {"data": [b.data[k] for k in range(per_beat)], "first": b.first, "last": b.last}
        for b in result["beats"]
    ]
    assert got == beats_in


def test_full_rate_one_vector_per_beat_count():
    fmt, length, per_beat = Fixed(8, 0, True), 12, 4
    des = Deserializer(fmt, length, per_beat)
    vectors = [[(v * 13 + k) % 100 for k in range(length)] for v in range(6)]
    times = []

    async def source(ctx):
        await send(ctx, des.i, [b for v in vectors for b in beats_of(v, per_beat)])

    async def sink(ctx):
        out = await receive(ctx, des.o, len(vectors), times=times)
        assert [[o[k] for k in range(length)] for o in out] == vectors

    sim = Simulator(des)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert {b - a for a, b in itertools.pairwise(times)} == {3}  # beats per vector
