# amaranth: UnusedElaboratable=no
"""The host link in the Amaranth simulator, driven byte by byte like a host would, in front of
a small real network core; replies are decoded with the protocol module and checked against the
integer golden model."""

import itertools
import random
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from torch import nn

from boards.link.device import HostLink
from boards.link.protocol import (
    ERROR_REPLY,
    Command,
    ErrorCode,
    ErrorReply,
    Frame,
    FrameDecoder,
    Identity,
    encode_frame,
    infer_request,
    pack_vector,
    parse_infer_reply,
    parse_ping_reply,
    parse_selftest_reply,
    ping_request,
    selftest_checksum,
    selftest_request,
)
from boards.link.uart import UARTRx, UARTTx
from compiler.frontend.convert import to_graph
from compiler.frontend.modelfile import LoadedModel
from compiler.golden import quantize_input, run_integer
from compiler.lower import lower
from compiler.nn.generate import search_chains
from compiler.nn.linear import DeButLinear
from compiler.passes import quantization_passes, run_passes
from debut.fixed import Fixed
from tests.streams import send

TIMEOUT = 300  # cycles of silence that abandon a frame


def toy_core(seed, sizes, bits, budget, unsigned=False):
    """A quantised toy model of DeBut layers, its lowered core and some raw inputs; with
    ``unsigned``, non-negative inputs and a final ReLU make both ends unsigned."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    layers = OrderedDict()
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        chains = list(search_chains(n_out, n_in, max_params=n_in * n_out, shape="any"))
        layers[f"fc{i}"] = DeButLinear(n_in, n_out, chains[rng.integers(len(chains))])
        if i < len(sizes) - 2 or unsigned:
            layers[f"relu{i}"] = nn.ReLU()
    model = nn.Sequential(layers).double().eval()
    x = rng.standard_normal((100, sizes[0]))
    if unsigned:
        x = np.abs(x)
    loaded = LoadedModel(model=model, path=Path("m.pt"), architecture=None, input_shape=(sizes[0],))
    graph = run_passes(to_graph(loaded), quantization_passes(x, *bits))
    return graph, lower(graph, budget=budget), x


# (sizes, act/weight bits, multiplier budget, unsigned ends): per_beat 4 in / 3 out with
# partial last beats and 1-byte elements; per_beat 6 / 4 at II 1 with 2-byte elements; per_beat 1
# with 2 bytes; unsigned 12-bit input and output (zero-extended on the wire)
CORES = {
    "folded-8bit": ((10, 12, 7), (8, 8), 64, False),
    "parallel-12bit": ((6, 8, 4), (12, 8), 10_000, False),
    "serial-12bit": ((10, 12, 7), (12, 8), 16, False),
    "unsigned-12bit": ((10, 12, 7), (12, 8), 64, True),
}


@pytest.fixture(scope="module", params=list(CORES))
def core(request):
    sizes, bits, budget, unsigned = CORES[request.param]
    graph, lowered, x = toy_core(1, sizes, bits, budget, unsigned)
    assert graph.input_format.signed == graph.output_format.signed == (not unsigned)
    fmt = graph.input_format
    edges = np.array([[fmt.max_int] * sizes[0], [fmt.min_int] * sizes[0]])
    vectors = np.concatenate([edges, quantize_input(graph, x[:20])])
    return graph, lowered, vectors


def converse(link, network, steps, *, seed=0, idle=0.0, stall=0.0, probe=None):
    """Play ``steps`` (bytes to send, number of reply frames to wait for) into ``link.rx`` and
    decode ``link.tx``; returns the replies of each step. ``probe(ctx)`` runs after each step.
    Also records the cycles of every transfer on the core's streams."""
    m = Module()
    m.submodules.link, m.submodules.core = link, network
    wiring.connect(m, link.core_i, network.i)
    wiring.connect(m, network.o, link.core_o)
    rng = random.Random(seed)
    received = bytearray()
    replies, probes = [], []
    transfers = {"in": [], "out": []}

    async def host(ctx):
        decoder = FrameDecoder()
        for data, expected in steps:
            await send(ctx, link.rx, data, rng, idle)
            got = []
            for _ in range(20_000):
                if len(got) >= expected:
                    break
                await ctx.tick()
                got += decoder.feed(bytes(received))
                received.clear()
            assert len(got) == expected, f"waited for {expected} replies, got {got}"
            replies.append(got)
            if probe is not None:
                probes.append(probe(ctx))
        await ctx.tick().repeat(2 * TIMEOUT)  # nothing more comes
        assert decoder.feed(bytes(received)) + decoder.flush() == []
        assert decoder.skipped == 0

    async def sink(ctx):
        while True:
            ready = rng.random() >= stall
            ctx.set(link.tx.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(link.tx.valid, link.tx.payload)
            if ready and valid:
                received.append(payload)

    async def monitor(ctx):
        cycle = 0
        async for _, _, iv, ir, ov, orr in ctx.tick().sample(
            network.i.valid, network.i.ready, network.o.valid, network.o.ready
        ):
            if iv and ir:
                transfers["in"].append(cycle)
            if ov and orr:
                transfers["out"].append(cycle)
            cycle += 1

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(sink, background=True)
    sim.add_testbench(monitor, background=True)
    sim.run()
    return replies, probes, transfers


def error_frame(code, command):
    return Frame(ERROR_REPLY, ErrorReply(code, command).encode())


def test_ping_and_infer_match_the_golden_model(core):
    graph, lowered, vectors = core
    link = HostLink.for_network(lowered.network, selftest=vectors[:3], design_id=0x1234ABCD)
    fmt = graph.input_format
    steps = [(ping_request(), 1)]
    steps += [(infer_request(v, fmt, graph.in_features), 1) for v in vectors[:8]]
    replies, _, _ = converse(link, lowered.network, steps, seed=1, idle=0.3, stall=0.3)
    assert parse_ping_reply(replies[0][0]) == Identity(
        graph.in_features, fmt, graph.out_features, graph.output_format, 3, 0x1234ABCD
    )
    got = np.array(
        [parse_infer_reply(r[0], graph.output_format, graph.out_features) for r in replies[1:]]
    )
    np.testing.assert_array_equal(got, run_integer(graph, vectors[:8]).output)


def test_bad_frames_get_error_replies_and_the_link_keeps_working(core):
    graph, lowered, vectors = core
    link = HostLink.for_network(lowered.network, selftest=vectors[:2], timeout=TIMEOUT)
    fmt, n_in, n_out = graph.input_format, graph.in_features, graph.out_features
    good = [infer_request(v, fmt, n_in) for v in vectors[:6]]
    bad_crc = bytearray(good[0])
    bad_crc[-3] ^= 0x10  # the last payload byte: the whole vector reaches the core
    payload = pack_vector(vectors[1], fmt, n_in)
    steps = [
        (bytes(bad_crc), 1),
        (good[0], 1),
        (good[1][:-4], 1),  # truncated INFER, then silence: TRUNCATED after the timeout
        (good[1][:-1], 1),  # all of the vector but one CRC byte: drained, TRUNCATED
        (b"\x00\xa5\x13\x5a\xff\xa5" + good[2], 1),  # garbage before a frame
        (encode_frame(0x42, b"abc"), 1),
        (encode_frame(Command.PING, b"x"), 1),
        (encode_frame(Command.INFER, payload[:-1]), 1),
        (encode_frame(Command.INFER, payload + b"\x00"), 1),  # longer than any payload
        (encode_frame(Command.SELFTEST, b"\x00"), 1),
        (good[3][:9] + good[4], 1),  # a truncated frame swallows the next: BAD_CRC
        (good[4], 1),
        (good[5], 1),
        (ping_request(), 1),
    ]
    replies, probes, _ = converse(
        link,
        lowered.network,
        steps,
        seed=2,
        idle=0.2,
        stall=0.2,
        probe=lambda ctx: ctx.get(link.status.error),
    )
    replies = [r[0] for r in replies]
    golden = run_integer(graph, vectors[:6]).output

    def output(k):
        return Frame(Command.INFER.reply, pack_vector(golden[k], graph.output_format, n_out))

    assert replies == [
        error_frame(ErrorCode.BAD_CRC, Command.INFER),
        output(0),
        error_frame(ErrorCode.TRUNCATED, Command.INFER),
        error_frame(ErrorCode.TRUNCATED, Command.INFER),
        output(2),
        error_frame(ErrorCode.UNKNOWN_COMMAND, 0x42),
        error_frame(ErrorCode.BAD_LENGTH, Command.PING),
        error_frame(ErrorCode.BAD_LENGTH, Command.INFER),
        error_frame(ErrorCode.OVERSIZED, Command.INFER),
        error_frame(ErrorCode.BAD_LENGTH, Command.SELFTEST),
        error_frame(ErrorCode.BAD_CRC, Command.INFER),
        output(4),
        output(5),
        Frame(Command.PING.reply, link.identity.encode()),
    ]
    assert probes == [1] * (len(steps) - 1) + [0]  # the error LED holds until a good PING


def test_selftest_checksum_and_cycles(core):
    graph, lowered, vectors = core
    link = HostLink.for_network(lowered.network, selftest=vectors)
    fmt = graph.input_format
    steps = [
        (selftest_request(), 1),
        (infer_request(vectors[5], fmt, graph.in_features), 1),
        (selftest_request(), 1),
    ]
    replies, _, transfers = converse(link, lowered.network, steps, seed=3, stall=0.5)
    results = [parse_selftest_reply(replies[0][0]), parse_selftest_reply(replies[2][0])]
    golden = run_integer(graph, vectors).output
    checksum = selftest_checksum(golden, graph.output_format)
    assert [r.checksum for r in results] == [checksum, checksum]
    np.testing.assert_array_equal(
        parse_infer_reply(replies[1][0], graph.output_format, graph.out_features), golden[5]
    )
    # the cycles counted equal those between the first input and the last output transfer
    n, in_beats, out_beats = len(vectors), link.in_beats, link.out_beats
    ins, outs = transfers["in"], transfers["out"]
    first = outs[n * out_beats - 1] - ins[0]
    second = outs[-1] - ins[n * in_beats + in_beats]
    assert [r.cycles for r in results] == [first, second]
    # back to back at the core's rate: one vector per II after the first one's latency
    ii, latency = lowered.ii, lowered.latency
    assert first == (in_beats - 1) + latency + (n - 1) * ii + (out_beats - 1)


def test_through_the_uarts():
    graph, lowered, x = toy_core(4, (6, 8, 3), (8, 8), 10_000)
    vectors = quantize_input(graph, x[:2])
    divisor = 4
    link = HostLink.for_network(lowered.network, selftest=vectors, timeout=50 * divisor)
    rx, tx = UARTRx(divisor), UARTTx(divisor)
    m = Module()
    m.submodules.link, m.submodules.core = link, lowered.network
    m.submodules.rx, m.submodules.tx = rx, tx
    wiring.connect(m, link.core_i, lowered.network.i)
    wiring.connect(m, lowered.network.o, link.core_o)
    wiring.connect(m, rx.o, link.rx)
    wiring.connect(m, link.tx, tx.i)
    request = ping_request() + infer_request(vectors[1], graph.input_format, graph.in_features)
    line = []

    async def host(ctx):
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(3)
        for index, byte in enumerate(request):
            for bit in [0, *((byte >> k) & 1 for k in range(8)), 1]:
                ctx.set(rx.rx, bit)
                await ctx.tick().repeat(divisor)
            if index == 6:  # after the PING: wait for its reply
                await ctx.tick().repeat(40 * 10 * divisor)
        await ctx.tick().repeat((7 + graph.out_features + 8) * 10 * divisor)

    async def probe(ctx):
        async for _, _, level in ctx.tick().sample(tx.tx):
            line.append(level)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(probe, background=True)
    sim.run()
    data, t = bytearray(), 1
    while t < len(line):
        if line[t - 1] == 1 and line[t] == 0:
            bits = [line[t + k * divisor + divisor // 2] for k in range(10)]
            data.append(sum(b << k for k, b in enumerate(bits[1:9])))
            t += 10 * divisor - 1
        t += 1
    decoder = FrameDecoder()
    replies = decoder.feed(bytes(data)) + decoder.flush()
    assert parse_ping_reply(replies[0]) == link.identity
    np.testing.assert_array_equal(
        parse_infer_reply(replies[1], graph.output_format, graph.out_features),
        run_integer(graph, vectors[1:2]).output[0],
    )


def test_parameter_checks():
    fmt = Fixed(8, 4)
    ok = {
        "in_format": fmt,
        "in_features": 4,
        "in_per_beat": 2,
        "out_format": fmt,
        "out_features": 3,
        "out_per_beat": 3,
        "selftest": np.zeros((2, 4), dtype=np.int64),
    }
    HostLink(**ok)
    cases = [
        ({"in_per_beat": 5}, r"^in_per_beat must be in 1\.\.4, not 5$"),
        ({"out_features": 0}, r"^out_features must be an int in 1\.\.65535, not 0$"),
        ({"in_format": 8}, r"^in_format must be a Fixed, not 8$"),
        (
            {"selftest": np.zeros((2, 3), dtype=np.int64)},
            r"^selftest must be an array of 1\.\.65535 vectors of 4 elements, not shape \(2, 3\)$",
        ),
        ({"selftest": np.zeros((2, 4))}, r"^selftest must hold integers, not float64$"),
        (
            {"selftest": np.full((1, 4), 128)},
            r"^selftest elements must lie in -128\.\.127 \(s8\.4\), not 128\.\.128$",
        ),
        ({"timeout": 0}, r"^timeout must be a positive int or None, not 0$"),
        ({"design_id": -1}, r"^design_id must be in 0\.\.4294967295, not -1$"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            HostLink(**{**ok, **change})
