from pathlib import Path

import pytest
from amaranth.hdl import Fragment

from compiler.lower import lower as lower_graph
from tests.helpers import quantize_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def lower(graph, **kwargs):
    """Lower and elaborate (every component built must be used, and must elaborate)."""
    lowered = lower_graph(graph, **kwargs)
    Fragment.get(lowered.network, None)
    return lowered


@pytest.fixture(scope="module")
def quantized():
    return {name: quantize_model(EXAMPLES / f"digits_{name}.pt") for name in ("debut", "dense")}


@pytest.mark.parametrize(
    ("name", "budget", "target"),
    [("debut", 156, 0.9), ("debut", 28, 0.85), ("dense", 156, 0.9), ("dense", 28, 0.9)],
)
def test_efficiency_targets_at_the_fastest_ii_that_fits(quantized, name, budget, target):
    lowered = lower(quantized[name].graph, budget=budget)
    net = lowered.network
    assert net.multipliers <= budget
    macs = sum(p.macs for p in lowered.plans)
    assert lowered.multiplier_efficiency == pytest.approx(macs / (net.ii * net.multipliers))
    assert lowered.multiplier_efficiency >= target
    # the budget is used: issuing faster would need more multipliers than it has
    assert lowered.folding.ii <= net.ii  # one-slot queues add cycles past the issue steps
    faster = [-(-p.macs // (lowered.folding.ii - 1)) for p in lowered.plans]
    assert sum(faster) > budget
    # the interface never limits throughput
    assert net.deserializer.beats <= net.ii and net.serializer.beats <= net.ii


def test_one_stage_per_factor_with_the_model_weights(quantized):
    q = quantized["debut"]
    lowered = lower(q.graph, budget=156)
    factors = [f for op in q.graph.layers for f in op.chain.factors]
    assert [s.factor for s in lowered.network.stages] == factors
    assert [p.name for p in lowered.plans] == ["fc1.f0", "fc1.f1", "fc2.f0", "fc2.f1", "fc3.f0"]
