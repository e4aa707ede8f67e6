"""Lowering: a quantised graph to the network core, one factor stage per DeBut factor (or, for a
budget smaller than the number of factors, shared stages that each run several consecutive
factors on one multiplier), folded from a budget or a target II; the core's stream interface and
the report's ``hardware`` section."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.artifacts import HardwareSection, Resources, StageReport
from compiler.folding import Folding, fold
from compiler.ir import Activation, Graph
from debut.chain import Factor
from debut.errors import FitError, QuantizationError, UnsupportedModelError
from debut.interface import CoreInterface, StreamPort
from hw.factor_spec import FactorSpec
from hw.factor_stage import FactorStage
from hw.network import Network
from hw.shared_stage import SharedStage

__all__ = ["CORE_NAME", "Lowered", "StagePlan", "hardware_section", "lower", "stage_plans"]

CORE_NAME = "debut_core"  # the top module of the emitted Verilog


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
    family: str = "ecp5"  # whose block RAMs the estimate counts

    @property
    def ii(self) -> int:
        return self.network.ii

    @property
    def latency(self) -> int:
        return self.network.latency

    @property
    def multiplier_efficiency(self) -> float:
        return sum(p.macs for p in self.plans) / (self.ii * self.network.multipliers)

    def interface(self, graph: Graph) -> CoreInterface:
        """The core's stream interface, for the manifest: what a driver or harness must send."""
        return CoreInterface(
            top=CORE_NAME,
            clock="clk",
            reset="rst",
            input=StreamPort("i", graph.in_features, self.in_per_beat, graph.input_format),
            output=StreamPort("o", graph.out_features, self.out_per_beat, graph.output_format),
            ii_cycles=self.ii,
            latency_cycles=self.latency,
        )

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
    family: str = "ecp5",
) -> Lowered:
    """Build the network core of a quantised graph. ``dsp`` names the DSP cell the stages
    instantiate (see :data:`hw.factor_stage.DSP_PRIMITIVES`); None leaves the multipliers to
    synthesis, and is the one the Amaranth simulator can run. ``stage_registers``: a register
    between consecutive stages (see :class:`hw.network.Network`; needs an II of 2 or more).
    ``family``: the FPGA family whose block RAMs the estimate counts."""
    if graph.input_format is None or any(op.quant is None for op in graph.layers):
        raise QuantizationError("the graph is not quantised; quantise it before lowering")
    plans = stage_plans(graph)
    folding = fold([p.macs for p in plans], budget=budget, target_ii=target_ii)
    if stage_registers and folding.ii < 2:  # checked before any stage is made
        raise FitError(f"stage registers need an II of at least 2, not {folding.ii}")
    specs = []
    ops = {op.name: op for op in graph.layers}
    for plan in plans:
        op = ops[plan.layer]
        q = op.quant
        last = plan.index == len(op.chain) - 1
        if last and op.activation is Activation.RELU6:
            raise UnsupportedModelError(
                f"{op.name}: ReLU6 is not lowered to hardware yet; use ReLU"
            )
        specs.append(
            FactorSpec(
                plan.factor,
                op.chain.split(q.int_twiddle)[plan.index],
                in_format=q.in_formats[plan.index],
                weight_format=q.weight_formats[plan.index],
                out_format=q.out_formats[plan.index],
                shift=q.shift(plan.index),
                acc_width=q.acc_widths[plan.index],
                bias=q.int_bias if last else None,
                relu=last and op.activation is Activation.RELU,
            )
        )
    stages = [
        FactorStage.from_spec(specs[group[0]], multipliers=multipliers, dsp=dsp)
        if len(group) == 1
        else SharedStage([specs[k] for k in group], dsp=dsp, family=family)
        for group, multipliers in zip(folding.groups, folding.multipliers, strict=True)
    ]
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
    return Lowered(network, tuple(plans), folding, in_per_beat, out_per_beat, family)


def hardware_section(lowered: Lowered) -> HardwareSection:
    """The report's ``hardware`` section: the core's rate, multipliers and the estimate of each
    stage and of the whole core."""
    network = lowered.network
    total = Resources(**network.stage_register_resources())
    stages = []
    for group, stage in zip(lowered.folding.groups, network.stages, strict=True):
        estimate = Resources(**stage.resources(lowered.family))
        total += estimate
        mine = [lowered.plans[k] for k in group]
        stages.append(
            StageReport(
                name=mine[0].name if len(mine) == 1 else f"{mine[0].name}..{mine[-1].name}",
                factor=mine[0].factor.as_list()
                if len(mine) == 1
                else [p.factor.as_list() for p in mine],
                macs=sum(p.macs for p in mine),
                multipliers=stage.multipliers,
                ii_cycles=stage.interval,
                issue_steps=stage.ii,
                queue_slots=stage.queue_depth,
                latency_cycles=stage.latency,
                estimate=estimate,
            )
        )
    return HardwareSection(
        ii_cycles=lowered.ii,
        latency_cycles=lowered.latency,
        multipliers=network.multipliers,
        dsp_primitive=network.stages[0].dsp,
        multiplier_efficiency=lowered.multiplier_efficiency,
        in_per_beat=lowered.in_per_beat,
        out_per_beat=lowered.out_per_beat,
        stage_registers=bool(network.stage_registers),
        estimate=total,
        stages=tuple(stages),
    )
