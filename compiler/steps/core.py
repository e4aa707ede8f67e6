"""Steps on the core: fold it onto the multipliers, check it fits the board, emit its Verilog
and check that against the golden model (a quick check, or the ``sim`` command's run)."""

from __future__ import annotations

import shutil

import numpy as np

from compiler.console import percent, table
from compiler.fit import check_fit, design_estimate, lower_for_board, misfits
from compiler.golden import quantize_input
from compiler.lower import CORE_NAME, hardware_section
from compiler.steps.state import BuildState
from compiler.verification import check_core, input_vectors
from debut.errors import SimulationMismatch
from debut.files import write_atomic

__all__ = [
    "CHECK_VECTORS",
    "SELFTEST_VECTORS",
    "check",
    "check_simulator",
    "fit",
    "lower",
    "selftest_vectors",
    "simulate",
    "verilog",
]

SELFTEST_VECTORS = 32  # input vectors stored on chip for the SELFTEST command
CHECK_VECTORS = 16  # vectors of the quick simulation of the core's Verilog


def selftest_vectors(state: BuildState) -> np.ndarray:
    """The first test vectors (random ones over the input format when there are none): the
    self-test ROM's contents, whose first ``CHECK_VECTORS`` the quick check simulates."""
    graph = state.quantized.graph
    test = state.data.test
    if len(test):
        return quantize_input(graph, test[:SELFTEST_VECTORS])
    fmt = graph.input_format
    rng = np.random.default_rng(0)
    return rng.integers(fmt.min_int, fmt.max_int + 1, size=(SELFTEST_VECTORS, graph.in_features))


def lower(state: BuildState) -> None:
    """Fold the quantised graph onto the board's multiplier budget (the fastest II that fits,
    or ``target_ii``): a pipelined stage per DeBut factor, or shared stages that run several
    on one multiplier. Without ``--dsp-budget`` or ``--target-ii``, a core too large for the
    board is folded onto the largest budget whose estimate fits."""
    board = state.options.target_board
    options = state.options
    lowered = lower_for_board(
        state.quantized.graph,
        board,
        budget=options.budget,
        target_ii=options.target_ii,
        shrink=options.dsp_budget is None and options.target_ii is None,
        say=state.say,
    )
    state.lowered = lowered
    hardware = hardware_section(lowered)
    state.say(
        f"core: II {lowered.ii} cycles, latency {lowered.latency} cycles, "
        f"{hardware.multipliers} multipliers of {board.dsp} DSPs, multiplier efficiency "
        f"{lowered.multiplier_efficiency:.3f}"
        + (", registers between stages" if hardware.stage_registers else "")
    )
    rows = [["stage", "factor", "MACs", "mult", "II", "latency"]]
    for st in hardware.stages:
        rows.append(
            [
                st.name,
                str(st.factor).replace(" ", ""),
                str(st.macs),
                str(st.multipliers),
                str(st.ii_cycles),
                str(st.latency_cycles),
            ]
        )
    for line in table(rows, right={2, 3, 4, 5}):
        state.say(f"  {line}")


def fit(state: BuildState) -> None:
    """The estimate of the core and the board harness against the board: an error when the build
    goes on to synthesis (naming the largest DSP budget that fits), a warning otherwise."""
    board = state.options.target_board
    lowered = state.lowered
    estimate = design_estimate(lowered)
    state.board_estimate = estimate
    state.misfits = tuple(misfits(estimate, board))
    state.say(
        f"estimate with the board harness: {estimate.dsp} DSP, {estimate.lut:,} LUT4 of "
        f"{board.lut:,}, {estimate.ff:,} FF, {estimate.ebr} EBR of {board.ebr}"
    )
    if not state.misfits:
        return
    if state.will_run("synth"):
        lowered.discard()
        check_fit(state.quantized.graph, lowered, board)
    state.say(
        f"warning: the design does not fit {board.name} ({', '.join(state.misfits)}); try a "
        "larger board, or a smaller --dsp-budget (fewer multipliers need less logic)"
    )


def verilog(state: BuildState) -> None:
    """The core's Verilog, ``DIR/core.v``."""
    from amaranth.back import verilog as amaranth_verilog

    text = amaranth_verilog.convert(state.lowered.network, name=CORE_NAME, emit_src=False)
    state.verilog = write_atomic(state.out_dir / "core.v", text)
    state.say(f"made {state.recorded(state.verilog)}")


def check_simulator(verilog, top: str) -> str:
    """The quick check's simulator: Verilator when a compiled model of this core is in the
    cache (it starts at once), else Icarus when installed (no C++ build: on the 156-DSP digits
    core the check takes about 12 s in Icarus against 40 to 60 s of Verilator build), else
    Verilator."""
    from sim.runner import cached_model

    if cached_model(verilog, top) is not None or shutil.which("iverilog") is None:
        return "verilator"
    return "icarus"


def check(state: BuildState) -> None:
    """A short exact simulation of the core's Verilog against the golden model, with random
    input idles and output backpressure, in the faster simulator for it
    (:func:`check_simulator`)."""
    graph = state.quantized.graph
    interface = state.lowered.interface(graph)
    simulator = check_simulator(state.verilog, interface.top)
    state.say(f"{CHECK_VECTORS} vectors in {simulator} ...")
    state.check = check_core(
        graph,
        interface,
        state.verilog,
        selftest_vectors(state)[:CHECK_VECTORS],
        sim_dir=state.out_dir / "sim_check",
        what="core's Verilog",
        progress=state.say,
        simulator=simulator,
    )


def simulate(state: BuildState) -> None:
    """The ``sim`` command's run: the test split, edge and random vectors through the core's
    Verilog, every output element compared with the golden model; the core's accuracy on the
    test vectors when they all match."""
    options, data = state.options, state.data
    graph = state.quantized.graph
    vectors = input_vectors(graph, data.test, options.vectors, options.sim_seed)
    state.say(
        f"{len(vectors)} vectors in {options.simulator} (random input idles and output "
        "backpressure) ..."
    )
    result = check_core(
        graph,
        state.lowered.interface(graph),
        state.verilog,
        vectors,
        sim_dir=state.out_dir / f"sim_{options.simulator}",
        what="simulated core",
        progress=state.say,
        raise_on_mismatch=False,
        simulator=options.simulator,
        seed=options.sim_seed,
        waves=options.waves,
    )
    state.sim = result
    state.say(
        f"{result.mismatches} mismatches in {result.vectors * graph.out_features:,} output "
        f"elements; {result.cycles_per_vector:.1f} cycles per vector (II {state.lowered.ii})"
    )
    if result.waves:
        state.say(f"waveform: {result.waves}")
    if not result.passed:
        raise SimulationMismatch(
            f"the simulated core differs from the golden model: {result.mismatches} mismatches, "
            f"{result.framing_errors} framing errors{', timed out' if result.timed_out else ''}; "
            f"logs in {result.sim_dir}"
        )
    # the simulated outputs equal the golden model's, so its predictions are the core's
    n_test = min(len(data.test), len(vectors))
    hw_pred = state.quantized.test_run.output[:n_test].argmax(axis=1)
    labels = data.test_labels
    accuracy = None if labels is None else float((hw_pred == labels[:n_test]).mean())
    line = f"on the first {n_test} test vectors the core's accuracy is {percent(accuracy)}"
    if state.float_predictions is not None:
        agreement = (hw_pred == state.float_predictions[:n_test]).mean()
        line += f", argmax agreement with the float model {agreement:.2%}"
    state.say(line)
