"""The host driver against the host link and a real network core in the Amaranth simulator."""

import itertools
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
