"""The build pipeline: one ordered list of named steps over one build state, and the Python API
that runs it (docs/architecture.md, docs/api-pipeline in docs/cli.md).

Every command runs a part of the same list (``BUILD_STEPS``)::

    load summarize frontend quantize lower fit verilog check harness synth pnr netlist pack
    |- inspect --|
    |-------- quantize --------| + sweep
    |------------------- build (--stop-after STEP; --no-synth: through check) -------------|
    |-------------------------- sim ---------------| + simulate

Each step is timed by one timer and announced by one progress line; its seconds go to the
report's ``time_per_step_s``. When the steps are done (or one fails after the core's Verilog
was written), the report and the manifest are assembled from the state and written once.

From a script::

    from compiler import pipeline
    report = pipeline.build("examples/digits_debut.pt", board="ulx3s", dsp_budget=28)
    report.hardware.ii_cycles, report.synth.fmax_mhz
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.artifacts import (
    ArtifactsSection,
    BoardRecord,
    CellUse,
    ClockPass,
    CriticalPath,
    Manifest,
    QuantSection,
    Report,
    SelftestRecord,
    SelftestSummary,
    SynthSection,
    ThroughputSection,
    write_build,
)
from compiler.folders import BuildFolder, write_error
from compiler.golden import factor_tensor_names
from compiler.lower import hardware_section
from compiler.options import Options
from compiler.provenance import git_revision, tool_versions
from compiler.steps import board, core, front
from compiler.steps.state import BuildState
from compiler.verification import sim_section, top_check_section
from debut.errors import CompilerError, OptionError

__all__ = [
    "BUILD_STEPS",
    "COMMANDS",
    "Options",
    "Step",
    "build",
    "default_out_dir",
    "inspect",
    "quantize",
    "run",
    "simulate",
]


@dataclass(frozen=True)
class Step:
    """A named step: ``run`` does it (its docstring says what), ``doing`` is its progress line."""

    name: str
    run: Callable[[BuildState], None]
    doing: str


BUILD_STEPS: tuple[Step, ...] = (
    Step("load", front.load, "reading the model and its data"),
    Step("summarize", front.summarize_model, "counting parameters and MACs"),
    Step("frontend", front.frontend, "the PyTorch model to the IR"),
    Step("quantize", front.quantize, "quantising to fixed point"),
    Step("lower", core.lower, "folding the core onto the multipliers"),
    Step("fit", core.fit, "the estimate against the board"),
    Step("verilog", core.verilog, "writing the core's Verilog"),
    Step("check", core.check, "simulating the core against the golden model"),
    Step("harness", board.harness, "the board top around the core"),
    Step("synth", board.synth, "Yosys"),
    Step("pnr", board.pnr, "nextpnr"),
    Step("netlist", board.netlist, "the board top's netlist over its UART"),
    Step("pack", board.pack, "the bitstream"),
)
SWEEP = Step("sweep", front.sweep, "fixed-point accuracy at 4 to 12 bits")
SIMULATE = Step("simulate", core.simulate, "simulating the core against the golden model")
NO_SYNTH_STOP = "check"  # --no-synth: the core's Verilog and its quick check


def _through(name: str) -> tuple[Step, ...]:
    names = [step.name for step in BUILD_STEPS]
    return BUILD_STEPS[: names.index(name) + 1]


COMMANDS: dict[str, tuple[Step, ...]] = {
    "inspect": _through("summarize"),
    "quantize": (*_through("quantize"), SWEEP),
    "build": BUILD_STEPS,
    "sim": (*_through("verilog"), SIMULATE),
}
_PER_BOARD = {"build", "sim"}  # commands whose default folder names the board
DEFAULT_SWEEP = tuple(range(4, 13))


def default_out_dir(command: str, model: Path, board: str) -> Path:
    """``build/<model-stem>/``, and ``build/<model-stem>-<board>/`` for build and sim."""
    from boards.registry import get_board

    suffix = f"-{get_board(board).name}" if command in _PER_BOARD else ""
    return Path("build") / (Path(model).stem + suffix)


def run(
    command: str,
    model: str | Path,
    options: Options,
    *,
    out: str | Path | None = None,
    stop_after: str | None = None,
    progress: Callable[[str], None] = print,
    write: bool = True,
) -> BuildState:
    """Run ``command``'s steps (up to ``stop_after``) on ``model`` and, with ``write``, write the
    build's records into ``out`` (default: :func:`default_out_dir`). Returns the state with every
    product."""
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(COMMANDS)}, not {command!r}")
    steps = COMMANDS[command]
    names = [step.name for step in steps]
    if stop_after is not None:
        if stop_after not in names:
            raise OptionError(f"--stop-after must be one of {', '.join(names)}, not {stop_after!r}")
        steps = steps[: names.index(stop_after) + 1]
    plan = tuple(step.name for step in steps)
    options.check(synthesis="synth" in plan or command != "build")
    model = Path(model)
    final = Path(out) if out is not None else default_out_dir(command, model, options.board)
    if not write:
        with tempfile.TemporaryDirectory(prefix="debut-build-") as scratch:
            state = BuildState(command, model, options, Path(scratch), plan, progress)
            _run_steps(state, steps)
        return state
    with BuildFolder(final) as folder:
        state = BuildState(command, model, options, folder.work, plan, progress)
        state.record_dir = final
        try:
            _run_steps(state, steps)
            _write_records(state)
        except (CompilerError, KeyboardInterrupt, OSError) as exc:
            raise _abandoned(state, folder, exc) from None
        folder.commit()
        state.relocate(final)
    for name in ("manifest.json", "report.json"):
        if (final / name).is_file():
            progress(f"wrote {final / name}")
    return state


def _run_steps(state: BuildState, steps: tuple[Step, ...]) -> None:
    try:
        for step in steps:
            state.progress(f"[{step.name}] {step.doing} ...")
            start = time.perf_counter()
            step.run(state)
            state.seconds[step.name] = time.perf_counter() - start
            state.progress(f"[{step.name}] done in {state.seconds[step.name]:.1f} s")
    finally:
        if state.lowered is not None and state.board_build is None:
            state.lowered.discard()  # elaborated only for a board top


def _abandoned(state: BuildState, folder: BuildFolder, exc: BaseException) -> BaseException:
    """What to raise after ``exc`` stopped a build: the work folder, with the records of what
    ran, moved aside to ``DIR.failed`` (``DIR`` untouched), and paths in the message naming
    where the files are now."""
    if isinstance(exc, OSError):
        error = write_error(exc, folder.final)
        if error is None:
            return exc  # a bug: keep its traceback
        exc = error
    try:
        if any(folder.work.iterdir()):
            state.record_dir = folder.failed
            _write_records(state)
    except OSError:
        pass  # the records of a failed build are a courtesy; the error itself matters
    failed = folder.abandon()
    if failed is not None:
        state.progress(
            f"the failed build's logs and products are in {failed}; {folder.final} is as it was"
        )
        if isinstance(exc, CompilerError) and exc.args:
            exc.args = (str(exc.args[0]).replace(str(folder.work), str(failed)), *exc.args[1:])
    return exc


def _write_records(state: BuildState) -> list[Path]:
    return write_build(state.out_dir, report_of(state), manifest_of(state))


# ---- the records -------------------------------------------------------------------------------


def report_of(state: BuildState) -> Report:
    """The typed report of what ``state``'s steps produced."""
    hardware = throughput = synth = None
    if state.lowered is not None:
        hardware = hardware_section(state.lowered)
        hardware = _replace(hardware, board_estimate=state.board_estimate, misfits=state.misfits)
        throughput = _throughput(state)
    build = state.board_build
    if build is not None and build.nextpnr is not None:
        synth = _synth_section(state)
    artifacts = None
    if state.verilog is not None:
        artifacts = ArtifactsSection(
            verilog=state.recorded(state.verilog),
            bitstream=None if state.bitstream is None else state.recorded(state.bitstream),
        )
    return Report(
        command=state.command,
        model=state.model,
        quant=_quant_section(state),
        hardware=hardware,
        sim=None if state.sim is None else sim_section(state.sim),
        synth=synth,
        throughput=throughput,
        artifacts=artifacts,
        time_per_step_s=dict(state.seconds),
    )


def manifest_of(state: BuildState) -> Manifest | None:
    """The manifest of ``state``'s quantised network (None before quantisation)."""
    if state.quantized is None:
        return None
    graph = state.quantized.graph
    build = state.board_build
    board_record = None
    if state.bitstream is not None:
        board_record = BoardRecord(
            board=build.board.name,
            clock_mhz=build.clock.f_mhz,
            baud=build.baud,
            selftest=SelftestRecord(len(build.selftest), build.checksum, build.selftest.tolist()),
            design_id=build.design_id,
        )
    options = state.options.to_dict()
    options["stage_registers"] = (
        None if state.lowered is None else bool(state.lowered.network.stage_registers)
    )
    return Manifest.of_graph(
        graph,
        model_path=state.model_path,
        options=options,
        tool_versions=tool_versions(),
        git_revision=git_revision(),
        interface=None if state.lowered is None else state.lowered.interface(graph),
        board=board_record,
    )


def _replace(record, **changes):
    from dataclasses import replace

    return replace(record, **changes)


def _quant_section(state: BuildState) -> QuantSection | None:
    q = state.quantized
    if q is None:
        return None
    graph = q.graph
    formats = {"input": graph.input_format.to_list()}
    for op in graph.layers:
        lq = op.quant
        for k, name in enumerate(factor_tensor_names(op)):
            formats[name] = lq.out_formats[k].to_list()
            formats[f"{op.name}.w{k}"] = lq.weight_formats[k].to_list()
        formats[f"{op.name}.bias"] = [None, lq.bias_frac, True]
    return QuantSection(
        act_bits=q.act_bits,
        weight_bits=q.weight_bits,
        formats=formats,
        float_accuracy=state.model.float_accuracy,
        fixed_accuracy=q.fixed_accuracy,
        agreement=q.agreement,
        saturations=q.saturations,
        calibration=state.data.calibration_source,
        test=state.data.test_source,
        sweep=state.sweep,
    )


def _throughput(state: BuildState) -> ThroughputSection:
    lowered = state.lowered
    build = state.board_build
    section = ThroughputSection(
        multiplier_efficiency=lowered.multiplier_efficiency,
        inferences_per_cycle=1 / lowered.ii,
    )
    if build is None or build.nextpnr is None:
        return section
    clock = build.clock.f_mhz
    rate = clock * 1e6 / lowered.ii
    return _replace(
        section,
        clock_mhz=clock,
        ii_cycles=lowered.ii,
        latency_cycles=lowered.latency,
        latency_us=lowered.latency / clock,
        inferences_per_s=rate,
        macs_per_s=rate * sum(plan.macs for plan in lowered.plans),
        inferences_per_s_per_dsp=rate / max(1, lowered.network.multipliers),
    )


def _synth_section(state: BuildState) -> SynthSection:
    build = state.board_build
    board, report, clock = build.board, build.nextpnr, build.clock
    return SynthSection(
        board=board.name,
        device=board.device,
        package=board.package,
        clock_mhz=clock.f_mhz,
        requested_clock_mhz=clock.requested_mhz,
        pll=None if clock.pll is None else clock.pll.parameters(),
        clock_net=report.main_clock,
        fmax_mhz=report.main_fmax_mhz,
        # the clock the design runs at (the automatic clock's, after routing), not nextpnr's
        # target, and every other clock's target
        timing_met=report.main_fmax_mhz >= clock.f_mhz
        and all(met for name, met in report.timing_met.items() if name != report.main_clock),
        utilization={
            cell: CellUse(used, available)
            for cell, (used, available) in report.utilization.items()
            if used
        },
        yosys_cells=build.cells or {},
        lut_mapper=build.mapper or "",
        seed=state.options.seed,
        estimate=state.board_estimate,
        baud=build.baud,
        selftest=SelftestSummary(len(build.selftest), build.checksum),
        design_id=build.design_id,
        tools=tool_versions(),
        rtl_check=None if state.check is None else sim_section(state.check),
        netlist_check=(
            None if state.netlist_check is None else top_check_section(state.netlist_check)
        ),
        logs={
            "yosys": state.recorded(build.workdir / "yosys.log"),
            "nextpnr": state.recorded(build.workdir / "nextpnr.log"),
        },
        clock_mode="auto" if build.auto_clock else "fixed",
        clock_reason=build.clock_reason,
        clock_passes=tuple(ClockPass(**p) for p in build.passes),
        critical_path=None
        if build.critical_path is None
        else CriticalPath(
            start=build.critical_path["from"],
            end=build.critical_path["to"],
            **{k: v for k, v in build.critical_path.items() if k not in ("from", "to")},
        ),
    )


# ---- the API -----------------------------------------------------------------------------------


def inspect(model: str | Path, *, out=None, progress=print, **options) -> Report:
    """Layers, chains, parameters, MACs and the float test accuracy of ``model`` (the report's
    ``model`` section). ``options``: the fields of :class:`compiler.options.Options`."""
    return report_of(run("inspect", model, Options(**options), out=out, progress=progress))


def quantize(model: str | Path, *, out=None, progress=print, **options) -> Report:
    """``inspect``, then fixed point: the golden model against the float model, and the accuracy
    at 4 to 12 bits (``sweep_bits``)."""
    options.setdefault("sweep_bits", DEFAULT_SWEEP)
    return report_of(run("quantize", model, Options(**options), out=out, progress=progress))


def build(
    model: str | Path, *, out=None, stop_after: str | None = None, progress=print, **options
) -> Report:
    """``quantize`` (without the sweep), then the core for ``board``, its quick check and, unless
    ``stop_after`` names an earlier step, the verified bitstream."""
    state = run(
        "build", model, Options(**options), out=out, stop_after=stop_after, progress=progress
    )
    return report_of(state)


def simulate(model: str | Path, *, out=None, progress=print, **options) -> Report:
    """The core's Verilog, as ``build`` makes it, simulated against the golden model on
    ``vectors`` vectors (the report's ``sim`` section)."""
    return report_of(run("sim", model, Options(**options), out=out, progress=progress))
