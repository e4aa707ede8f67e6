"""The host driver against the host link and a real network core in the Amaranth simulator."""

import itertools
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from boards.link import protocol
from boards.link.host import HostDriver, SimulatedBoard
from compiler.frontend.convert import to_graph
from compiler.frontend.modelfile import LoadedModel, Preprocessing
from compiler.golden import quantize_input, run_integer
from compiler.lower import lower
from compiler.nn.generate import search_chains
from compiler.nn.linear import DeButLinear
from compiler.passes import quantization_passes, run_passes
from debut.errors import LinkError


def small_graph(seed=0, sizes=(10, 12, 4)):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    layers = OrderedDict()
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        chains = list(search_chains(n_out, n_in, max_params=n_in * n_out))
        layers[f"fc{i}"] = DeButLinear(n_in, n_out, chains[rng.integers(len(chains))])
        if i < len(sizes) - 2:
            layers[f"relu{i}"] = nn.ReLU()
    model = nn.Sequential(layers).double().eval()
    x = rng.uniform(0, 16, (100, sizes[0]))
    pre = Preprocessing(scale=1 / 16, offset=0.0)
    loaded = LoadedModel(
        model=model,
        path=Path("m.pt"),
        architecture=None,
        input_shape=(sizes[0],),
        preprocessing=pre,
    )
    return run_passes(to_graph(loaded), quantization_passes(pre.apply(x), 8, 8)), x


@pytest.fixture(scope="module")
def board():
    graph, x = small_graph()
    selftest = quantize_input(graph, x[:5])
    lowered = lower(graph, budget=6)
    sim = SimulatedBoard(lowered.network, selftest=selftest)
    return graph, x, selftest, sim, lowered.interface(graph)


def test_ping_infer_and_selftest_through_the_simulated_board(board):
    graph, x, selftest, sim, interface = board
    driver = HostDriver(interface, graph.preprocessing, sim)
    identity = driver.ping()
    assert identity.selftest_vectors == len(selftest)
    run = driver.infer(x[10:16])  # raw features: preprocessing and quantisation in the driver
    expected = run_integer(graph, quantize_input(graph, x[10:16])).output
    np.testing.assert_array_equal(run.outputs, expected)
    np.testing.assert_array_equal(run.predictions, expected.argmax(axis=1))
    result = driver.selftest()
    golden = run_integer(graph, selftest).output
    assert result.checksum == protocol.selftest_checksum(golden, graph.output_format)
    assert result.cycles > 0


def test_driver_recovers_after_garbage_on_the_line(board):
    graph, x, _, sim, interface = board
    driver = HostDriver(interface, graph.preprocessing, sim)
    sim.write(b"\x00\x13\x37garbage")
    x_int = quantize_input(graph, x[20:22])
    np.testing.assert_array_equal(driver.infer_integers(x_int), run_integer(graph, x_int).output)


def test_wrong_width_and_silent_link_are_clear_errors(board):
    graph, _, _, sim, interface = board
    with pytest.raises(Exception, match="input must have 10 features per row, not 3"):
        HostDriver(interface, graph.preprocessing, sim).infer(np.zeros((1, 3)))

    class Silent:
        def write(self, data):
            pass

        def read(self, size):
            return b""

    with pytest.raises(LinkError, match="no reply to PING before the link's timeout"):
        HostDriver(interface, graph.preprocessing, Silent()).ping()


class Noisy:
    """A transport that puts ``noise`` on the line before each reply of ``inner``."""

    def __init__(self, inner, noise: bytes):
        self.inner, self.noise, self.pending = inner, noise, b""

    def write(self, data):
        self.pending = self.noise
        self.inner.write(data)

    def read(self, size):
        if self.pending:
            out, self.pending = self.pending[:size], self.pending[size:]
            return out
        return self.inner.read(size)


def test_driver_resynchronises_after_garbage_and_spurious_frames_before_a_reply(board):
    """Noise before each reply: random bytes, a header claiming a 64 KB payload, a frame with a
    bad CRC and a well-formed reply to another command; the driver skips them all."""
    graph, x, _, sim, interface = board
    stale = protocol.encode_frame(protocol.Command.PING.reply, b"stale")
    bad = bytearray(protocol.encode_frame(protocol.Command.INFER.reply, b"\x01\x02\x03\x04"))
    bad[-1] ^= 0xFF
    noise = b"\x13\x37" + protocol.SYNC + b"\x82\xff\xff" + bytes(bad) + stale + b"\xa5"
    driver = HostDriver(interface, graph.preprocessing, Noisy(sim, noise))
    x_int = quantize_input(graph, x[30:33])
    np.testing.assert_array_equal(driver.infer_integers(x_int), run_integer(graph, x_int).output)
    assert driver.skipped >= 3 * len(noise) - 3


def test_driver_gives_up_within_its_deadline_on_a_line_that_never_stops(board):
    graph, _, _, _, interface = board

    class Babbling:
        """Sends fake frame starts forever."""

        def write(self, data):
            pass

        def read(self, size):
            return (protocol.SYNC + b"\x81\x40\x00")[:size] * 1

    driver = HostDriver(interface, graph.preprocessing, Babbling(), deadline_s=0.3)
    start = time.monotonic()
    with pytest.raises(LinkError, match=r"no reply to PING within 0\.3 s: the line carried"):
        driver.ping()
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("max_payload", [2, 40, 1000])
def test_decoder_work_per_byte_is_bounded_by_the_payload_limit(max_payload):
    """Adversarial streams: back-to-back SYNCs, headers of the longest allowed frame whose CRC
    never matches, oversized headers. The bytes examined stay within (max_payload + 7) per byte
    received, and the decoder keeps no more than one frame's bytes."""
    rng = np.random.default_rng(max_payload)
    longest = max_payload.to_bytes(2, "little")
    pieces = [
        protocol.SYNC * 50,
        (protocol.SYNC + b"\x82" + longest + bytes(max_payload) + b"\x00\x00") * 5,
        (protocol.SYNC + b"\x82\xff\xff") * 50,
        bytes(rng.integers(0, 256, 5000, dtype=np.uint8)),
        (protocol.SYNC + b"\x82" + longest) * 100,
    ]
    decoder = protocol.FrameDecoder(max_payload=max_payload)
    fed = 0
    for piece in pieces * 3:
        for k in range(0, len(piece), 97):
            decoder.feed(piece[k : k + 97])
            fed += len(piece[k : k + 97])
            assert decoder.pending <= max_payload + 7
    assert decoder.work <= (max_payload + 7) * fed
    assert decoder.work >= fed // 2  # it did look at what arrived
