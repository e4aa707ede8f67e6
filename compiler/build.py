"""The build flow: quantise, lower, emit the core's Verilog, write manifest and report.

Each step is named and timed; outputs are written atomically, so an interrupted or failed build
never leaves a file that looks complete.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from boards.registry import Board
from compiler.errors import FitError
from compiler.flow import Quantized, quantize_model
from compiler.lower import Lowered, lower
from compiler.manifest import manifest_of
from compiler.report import write_json_atomic, write_report
from compiler.summary import summarize

__all__ = [
    "HARNESS_ESTIMATE",
    "BuildResult",
    "build_core",
    "design_estimate",
    "interface_of",
    "misfits",
]

CORE_NAME = "debut_core"
# the harness around the core (UARTs, host link with its self-test ROM and checksum, PLL, LEDs),
# measured: an ECP5 build of a small model with the harness, minus the estimate of its core
HARNESS_ESTIMATE = {"lut": 1000, "ff": 450, "ebr": 1}


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def interface_of(lowered: Lowered, quantized: Quantized) -> dict:
    """The core's stream interface, for the manifest: what a driver or harness must send."""
    graph = quantized.graph
    return {
        "top": CORE_NAME,
        "clock": "clk",
        "reset": "rst",
        "input": {
            "port": "i",
            "elements": graph.in_features,
            "per_beat": lowered.in_per_beat,
            "beats": -(-graph.in_features // lowered.in_per_beat),
            "format": graph.input_format.to_list(),
            "payload": "data (per_beat elements, element k in bits k*width..), first, last",
        },
        "output": {
            "port": "o",
            "elements": graph.out_features,
            "per_beat": lowered.out_per_beat,
            "beats": -(-graph.out_features // lowered.out_per_beat),
            "format": graph.output_format.to_list(),
        },
        "ii_cycles": lowered.ii,
        "latency_cycles": lowered.latency,
    }


def design_estimate(lowered: Lowered) -> dict[str, int]:
    """The analytical estimate of the core and the board harness around it."""
    core = hardware_section(lowered)["estimate"]
    return {key: core[key] + HARNESS_ESTIMATE.get(key, 0) for key in core}


def misfits(estimate: dict[str, int], board: Board) -> list[str]:
    """What of ``estimate`` exceeds ``board`` (each LUT4 has one flip-flop), as text."""
    limits = {"dsp": board.dsp, "lut": board.lut, "ff": board.lut, "ebr": board.ebr}
    names = {"dsp": "DSPs", "lut": "LUT4s", "ff": "flip-flops", "ebr": "EBRs"}
    return [
        f"{estimate[key]:,} {names[key]} of {limit:,}"
        for key, limit in limits.items()
        if estimate[key] > limit
    ]


def hardware_section(lowered: Lowered) -> dict:
    stages = []
    registers = lowered.network.stage_register_resources()
    totals = dict(registers)
    for plan, stage in zip(lowered.plans, lowered.network.stages, strict=True):
        estimate = stage.resources()
        for key in totals:
            totals[key] += estimate[key]
        stages.append(
            {
                "name": plan.name,
                "factor": plan.factor.as_list(),
                "macs": plan.macs,
                "multipliers": stage.multipliers,
                "ii_cycles": stage.interval,
                "issue_steps": stage.ii,
                "queue_slots": stage.queue_depth,
                "latency_cycles": stage.latency,
                "estimate": estimate,
            }
        )
    return {
        "ii_cycles": lowered.ii,
        "latency_cycles": lowered.latency,
        "multipliers": lowered.network.multipliers,
        "dsp_primitive": lowered.network.stages[0].dsp,
        "multiplier_efficiency": lowered.multiplier_efficiency,
        "in_per_beat": lowered.in_per_beat,
        "out_per_beat": lowered.out_per_beat,
        "stage_registers": bool(lowered.network.stage_registers),
        "estimate": totals,
        "stages": stages,
    }


@dataclass
class BuildResult:
    quantized: Quantized
    lowered: Lowered
    out_dir: Path
    verilog: Path
    timings: dict[str, float] = field(default_factory=dict)


def build_core(
    model: Path,
    *,
    board: Board,
    out_dir: Path,
    act_bits: int = 8,
    weight_bits: int = 8,
    dsp_budget: int | None = None,
    target_ii: int | None = None,
    calib: str | None = None,
    trust_pickle: bool = False,
    progress: Callable[[str], None] = print,
) -> BuildResult:
    """Everything up to the core's Verilog (no synthesis)."""
    budget = board.dsp if dsp_budget is None else dsp_budget
    if budget > board.dsp:
        raise FitError(
            f"--dsp-budget {budget} exceeds the {board.dsp} DSPs of {board.name}; use at most "
            f"{board.dsp} or a larger board"
        )
    timings: dict[str, float] = {}
    for stale in ("top.bit", "top.bin"):  # an earlier build's, which this report won't describe
        (out_dir / stale).unlink(missing_ok=True)

    def step(name: str, run):
        progress(f"[{name}] ...")
        start = time.perf_counter()
        value = run()
        timings[name] = time.perf_counter() - start
        progress(f"[{name}] done in {timings[name]:.1f} s")
        return value

    quantized = step(
        "quantize",
        lambda: quantize_model(
            model,
            act_bits=act_bits,
            weight_bits=weight_bits,
            calib=calib,
            trust_pickle=trust_pickle,
        ),
    )

    def lower_for_board() -> Lowered:
        # registers between the stages whenever the II allows them and the board has room
        plain = lower(quantized.graph, budget=budget, target_ii=target_ii, dsp=board.dsp_primitive)
        if plain.ii < 2:
            return plain
        registered = lower(
            quantized.graph,
            budget=budget,
            target_ii=target_ii,
            dsp=board.dsp_primitive,
            stage_registers=True,
        )
        if misfits(design_estimate(registered), board):
            registered.discard()
            return plain
        plain.discard()
        return registered

    lowered = step("lower", lower_for_board)

    def emit() -> Path:
        from amaranth.back import verilog

        text = verilog.convert(lowered.network, name=CORE_NAME, emit_src=False)
        path = out_dir / "core.v"
        _write_text_atomic(path, text)
        return path

    verilog_path = step("verilog", emit)
    options = {
        "act_bits": act_bits,
        "weight_bits": weight_bits,
        "calib": calib,
        "trust_pickle": trust_pickle,
        "board": board.name,
        "dsp_budget": budget,
        "target_ii": target_ii,
        "stage_registers": bool(lowered.network.stage_registers),
    }
    manifest = manifest_of(quantized.graph, model_path=model, options=options)
    manifest["interface"] = interface_of(lowered, quantized)
    write_json_atomic(out_dir / "manifest.json", manifest)
    hardware = hardware_section(lowered)
    hardware["time_per_step_s"] = timings
    summary = summarize(quantized.loaded.model, quantized.loaded.input_shape)
    write_report(
        out_dir,
        model={**summary.to_dict(), "float_accuracy": quantized.float_accuracy},
        quant=quantized.quant_section(),
        hardware=hardware,
        throughput={
            "inferences_per_s": None,
            "macs_per_s": None,
            "multiplier_efficiency": lowered.multiplier_efficiency,
            "inferences_per_cycle": 1 / lowered.ii,
        },
        artifacts={"verilog": str(verilog_path), "bitstream": None},
    )
    return BuildResult(quantized, lowered, out_dir, verilog_path, timings)
