"""Lowering: a quantised graph to the network core, one factor stage per DeBut factor, with the
multipliers folded from a budget or a target II."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.errors import CompilerError, UnsupportedModelError
from compiler.folding import Folding, fold
from compiler.ir import Activation, Graph
from compiler.nn.chain import Factor
from hw.factor_stage import FactorStage
from hw.network import Network

__all__ = ["Lowered", "StagePlan", "lower", "stage_plans"]


@dataclass(frozen=True)
class StagePlan:
    """One factor stage: which layer and factor it computes, and its cost per vector."""

    name: str
    layer: str
    index: int
    factor: Factor
    macs: int


def stage_plans(graph: Graph) -> list[StagePlan]:
    plans = []
    for op in graph.layers:
        for k, factor in enumerate(op.chain.factors):
            plans.append(StagePlan(f"{op.name}.f{k}", op.name, k, factor, factor.params))
    return plans


@dataclass(frozen=True)
class Lowered:
    """The network core and how it was folded."""

    network: Network
    plans: tuple[StagePlan, ...]
    folding: Folding
    in_per_beat: int
    out_per_beat: int

    @property
    def ii(self) -> int:
        return self.network.ii

    @property
    def latency(self) -> int:
        return self.network.latency

    @property
    def multiplier_efficiency(self) -> float:
        return sum(p.macs for p in self.plans) / (self.ii * self.network.multipliers)

    def discard(self) -> None:
        """Mark a network that will never be elaborated (one only estimated, or one whose build
        stopped early) so that Amaranth does not warn that it was created but never used."""
        net = self.network
        for part in (net, net.deserializer, net.serializer, *net.stages, *net.stage_registers):
            part._MustUse__silence = True


def _per_beat(length: int, ii: int) -> int:
    """Elements per beat so that a vector's beats never take longer than the core's II."""
    return min(length, -(-length // ii))


def lower(
    graph: Graph,
    *,
    budget: int | None = None,
    target_ii: int | None = None,
    dsp: str | None = None,
    stage_registers: bool = False,
) -> Lowered:
    """Build the network core of a quantised graph. ``dsp`` names the DSP cell the stages
    instantiate (see :data:`hw.factor_stage.DSP_PRIMITIVES`); None leaves the multipliers to
    synthesis, and is the one the Amaranth simulator can run. ``stage_registers``: a register
    between consecutive stages (see :class:`hw.network.Network`; needs an II of 2 or more)."""
    if graph.input_format is None or any(op.quant is None for op in graph.layers):
        raise CompilerError("the graph is not quantised; quantise it before lowering")
    plans = stage_plans(graph)
    folding = fold([p.macs for p in plans], budget=budget, target_ii=target_ii)
    if stage_registers and folding.ii < 2:  # checked before any stage is made
        raise ValueError(f"stage registers need an II of at least 2, not {folding.ii}")
    stages = []
    ops = {op.name: op for op in graph.layers}
    for plan, multipliers in zip(plans, folding.multipliers, strict=True):
        op = ops[plan.layer]
        q = op.quant
        last = plan.index == len(op.chain) - 1
        if last and op.activation is Activation.RELU6:
            raise UnsupportedModelError(
                f"{op.name}: ReLU6 is not lowered to hardware yet; use ReLU"
            )
        stages.append(
            FactorStage(
                plan.factor,
                op.chain.split(q.int_twiddle)[plan.index],
                in_format=q.in_formats[plan.index],
                weight_format=q.weight_formats[plan.index],
                out_format=q.out_formats[plan.index],
                shift=q.shift(plan.index),
                acc_width=q.acc_widths[plan.index],
                multipliers=multipliers,
                bias=q.int_bias if last else None,
                relu=last and op.activation is Activation.RELU,
                dsp=dsp,
            )
        )
    in_per_beat = _per_beat(graph.in_features, folding.ii)
    out_per_beat = _per_beat(graph.out_features, folding.ii)
    network = Network(
        stages,
        in_format=graph.input_format,
        out_format=graph.output_format,
        in_per_beat=in_per_beat,
        out_per_beat=out_per_beat,
        stage_registers=stage_registers,
    )
    return Lowered(network, tuple(plans), folding, in_per_beat, out_per_beat)
