"""The lowered network core in the Amaranth simulator against the integer golden model."""

import itertools
import random
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator
from torch import nn

from compiler.frontend.convert import to_graph
from compiler.frontend.modelfile import LoadedModel
from compiler.golden import quantize_input, run_integer
from compiler.lower import lower
from compiler.nn.generate import search_chains
from compiler.nn.linear import DeButLinear
from compiler.passes import quantization_passes, run_passes
from debut.errors import FitError
from tests.helpers import quantize_model
from tests.streams import receive

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def small_graph(seed, sizes, shape="any", bits=(8, 8)):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    layers = OrderedDict()
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        chains = list(search_chains(n_out, n_in, max_params=n_in * n_out, shape=shape))
        layers[f"fc{i}"] = DeButLinear(n_in, n_out, chains[rng.integers(len(chains))])
        if i < len(sizes) - 2:
            layers[f"relu{i}"] = nn.ReLU()
    model = nn.Sequential(layers).double().eval()
    x = rng.standard_normal((200, sizes[0]))
    loaded = LoadedModel(model=model, path=Path("m.pt"), architecture=None, input_shape=(sizes[0],))
    return run_passes(to_graph(loaded), quantization_passes(x, *bits)), x


def beats(vector, per_beat):
    for start in range(0, len(vector), per_beat):
        lanes = list(vector[start : start + per_beat])
        lanes += [0] * (per_beat - len(lanes))
        yield {"data": lanes, "first": start == 0, "last": start + per_beat >= len(vector)}


def simulate(lowered, inputs, *, seed=0, idle=0.0, stall=0.0):
    """Run the core on integer input vectors; returns output vectors and the cycle at which
    each output's first beat and each input's last beat transferred."""
    net = lowered.network
    rng = random.Random(seed)
    n_out = lowered.plans[-1].factor.p
    out_beats = -(-n_out // lowered.out_per_beat)
    result, in_times, out_times = {}, [], []

    async def source(ctx):
        cycle = 0
        for vector in inputs:
            for beat in beats(vector, lowered.in_per_beat):
                while rng.random() < idle:
                    await ctx.tick()
                    cycle += 1
                ctx.set(net.i.payload, beat)
                ctx.set(net.i.valid, 1)
                while True:
                    _, _, ready = await ctx.tick().sample(net.i.ready)
                    cycle += 1
                    if ready:
                        break
                ctx.set(net.i.valid, 0)
            in_times.append(cycle)

    async def sink(ctx):
        got = await receive(ctx, net.o, len(inputs) * out_beats, rng, stall, times=out_times)
        result["beats"] = got

    sim = Simulator(net)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    vectors = []
    for v in range(len(inputs)):
        chunk = result["beats"][v * out_beats : (v + 1) * out_beats]
        assert [bool(b.first) for b in chunk] == [k == 0 for k in range(out_beats)]
        assert [bool(b.last) for b in chunk] == [k == out_beats - 1 for k in range(out_beats)]
        lanes = [b.data[k] for b in chunk for k in range(lowered.out_per_beat)]
        vectors.append(lanes[:n_out])
    return np.array(vectors), in_times, out_times[::out_beats]


@pytest.mark.parametrize(
    ("seed", "sizes", "budget", "shape", "registers"),
    [
        (0, (12, 18, 6), 7, "monotonic", False),  # folded, II set by the budget
        (0, (12, 18, 6), 7, "monotonic", True),  # with registers between the stages
        (1, (10, 20, 5), 23, "bulging", False),
        (1, (10, 20, 5), 23, "bulging", True),
        (2, (8, 12, 4), 10_000, "any", False),  # fully parallel, II = 1 in every stage
        # fewer multipliers than factors: shared stages, alone or beside factor stages
        (4, (12, 18, 6), 1, "monotonic", False),
        (4, (12, 18, 6), 2, "monotonic", True),
        (5, (10, 20, 16, 5), 3, "bulging", False),
    ],
)
def test_network_bit_exact_with_stalls(seed, sizes, budget, shape, registers):
    graph, x = small_graph(seed, sizes, shape)
    lowered = lower(graph, budget=budget, stage_registers=registers)
    assert lowered.network.multipliers <= budget
    stages = len(lowered.network.stages)
    assert len(lowered.network.stage_registers) == (stages - 1 if registers else 0)
    assert (stages < len(lowered.plans)) == (budget < len(lowered.plans))
    fmt = graph.input_format
    x_int = quantize_input(graph, x[:30])
    edges = np.array([[fmt.max_int] * sizes[0], [fmt.min_int] * sizes[0]])
    x_int = np.concatenate([edges, x_int, quantize_input(graph, 3 * x[30:34])])
    got, _, _ = simulate(lowered, x_int, seed=seed, idle=0.3, stall=0.3)
    np.testing.assert_array_equal(got, run_integer(graph, x_int).output)


@pytest.mark.parametrize(
    ("budget", "registers"),
    [(8, False), (8, True), (40, False), (40, True), (10_000, False), (1, False), (2, True)],
)
def test_measured_ii_and_latency_equal_the_model(budget, registers):
    graph, x = small_graph(3, (12, 16, 6))
    lowered = lower(graph, budget=budget, stage_registers=registers)
    x_int = quantize_input(graph, x[:30])
    got, in_times, out_times = simulate(lowered, x_int)
    np.testing.assert_array_equal(got, run_integer(graph, x_int).output)
    # buffers let the first vectors in faster; in steady state one vector enters and one
    # leaves every II cycles
    assert set(np.diff(in_times)[-10:].tolist()) == {lowered.ii}
    assert set(np.diff(out_times)[-10:].tolist()) == {lowered.ii}
    assert out_times[0] - in_times[0] == lowered.latency


def test_stage_registers_need_an_ii_of_two():
    graph, _ = small_graph(3, (12, 16, 6))
    parallel = lower(graph, budget=10_000)
    parallel.discard()
    assert parallel.ii == 1
    with pytest.raises(FitError, match="II of at least 2"):
        lower(graph, budget=10_000, stage_registers=True)


@pytest.mark.sim
def test_shipped_debut_model_at_the_ulx3s_25f_budget():
    q = quantize_model(EXAMPLES / "digits_debut.pt")
    lowered = lower(q.graph, budget=28)
    assert lowered.multiplier_efficiency >= 0.85
    x_int = quantize_input(q.graph, q.data.test[:8])
    got, _, _ = simulate(lowered, x_int, idle=0.2, stall=0.2)
    np.testing.assert_array_equal(got, q.test_run.output[:8])


@pytest.mark.sim
def test_small_debut_model_on_eight_multipliers():
    """DeBut output layer included (its last factor has r = 5): one multiplier per stage."""
    q = quantize_model(EXAMPLES / "digits_debut_small.pt")
    lowered = lower(q.graph, budget=8)
    assert lowered.network.multipliers == 8
    x_int = quantize_input(q.graph, q.data.test[:6])
    got, _, _ = simulate(lowered, x_int, idle=0.2, stall=0.2)
    np.testing.assert_array_equal(got, q.test_run.output[:6])


@pytest.mark.sim
@pytest.mark.parametrize("name", ["debut", "dense"])
def test_shipped_models_at_the_ulx3s_85f_budget(name):
    q = quantize_model(EXAMPLES / f"digits_{name}.pt")
    lowered = lower(q.graph, budget=156, stage_registers=True)  # as `build` makes them there
    x_int = quantize_input(q.graph, q.data.test[:6])
    got, _, _ = simulate(lowered, x_int, idle=0.2, stall=0.2)
    np.testing.assert_array_equal(got, q.test_run.output[:6])
