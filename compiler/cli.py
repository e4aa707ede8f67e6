"""Command-line interface: ``python -m compiler COMMAND MODEL [options]``.

This module only parses options and hands them to :mod:`compiler.pipeline` (and, for a finished
build, :mod:`compiler.device`); the steps report their own progress. Options share one
vocabulary across commands (:class:`compiler.options.Options`, docs/cli.md). A
:class:`~debut.errors.CompilerError` becomes one ``error:`` line and exit status 2; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from boards.registry import ALIASES, BOARDS
from compiler import __version__, pipeline
from compiler.console import table
from compiler.options import SIMULATORS, Options
from debut.errors import CompilerError, OptionError, ToolError

__all__ = ["build_parser", "main"]


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


_OPTION_NAMES = {field for field in Options.__dataclass_fields__}


def _options(args: argparse.Namespace, **extra) -> Options:
    """The :class:`Options` a parsed command line gives."""
    values = {k: v for k, v in vars(args).items() if k in _OPTION_NAMES and v is not None}
    return Options(**{**values, **extra})


def _clock(text: str) -> float | None:
    """``--clock-mhz``: a frequency, or ``auto`` (None)."""
    if text.strip().lower() == "auto":
        return None
    return float(text)


def cmd_inspect(args: argparse.Namespace) -> int:
    pipeline.run("inspect", args.model, _options(args), out=args.out)
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    options = _options(args, sweep_bits=pipeline.DEFAULT_SWEEP)
    pipeline.run("quantize", args.model, options, out=args.out)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    if args.no_synth and args.stop_after is not None:
        raise OptionError("--no-synth is --stop-after check; give one of them")
    stop_after = pipeline.NO_SYNTH_STOP if args.no_synth else args.stop_after
    if args.no_synth and (args.clock_mhz is not None or args.netlist_vectors):
        raise OptionError("--clock-mhz and --netlist-sim need synthesis; drop --no-synth")
    state = pipeline.run("build", args.model, _options(args), out=args.out, stop_after=stop_after)
    if state.bitstream is not None:
        print(f"flash it with: python -m compiler flash {state.out_dir}")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    pipeline.run("sim", args.model, _options(args), out=args.out)
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
    for line in table(rows, right={2, 3, 4, 5}):
        print(line)
    print()
    for alias, name in ALIASES.items():
        print(f"{alias} is {name}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from compiler.artifacts import read_manifest
    from compiler.device import run_on_device

    if args.baud is not None and args.baud < 1:
        raise OptionError(f"--baud must be a positive integer, not {args.baud!r}")
    manifest = read_manifest(args.dir)
    try:
        raw = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise OptionError(f"--input must be a readable .npy of raw features ({exc})") from None
    run = run_on_device(manifest, args.dir, raw, port=args.port, baud=args.baud)
    identity, fmt = run.identity, run.manifest.output.format
    print(
        f"device: protocol {identity.version}, {identity.in_features} inputs, "
        f"{identity.out_features} outputs, {identity.selftest_vectors} self-test vectors, "
        f"design id 0x{identity.design_id:08x}"
    )
    inference = run.inference
    for k, (pred, out) in enumerate(zip(inference.predictions, inference.outputs, strict=True)):
        values = fmt.to_float(out)
        print(f"  {k}: class {pred}  (outputs {np.array2string(values, precision=3)})")
    bound = "simulation speed" if args.port == "sim" else "bound by the link, not the core"
    print(
        f"{len(inference.outputs)} inferences in {inference.seconds:.3f} s over the link "
        f"({inference.inferences_per_s:.1f}/s; {bound})"
    )
    line = f"self-test: checksum 0x{run.selftest.checksum:08x}, {run.selftest.cycles} cycles"
    record = run.manifest.board
    if record is not None and run.selftest.cycles and args.port != "sim":
        rate = identity.selftest_vectors * record.clock_mhz * 1e6 / run.selftest.cycles
        line += f" ({rate:,.0f} inferences/s on the device at {record.clock_mhz:g} MHz)"
    print(line)
    if run.checksum_matches:
        print("self-test: matches the golden model's checksum recorded at build time")
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from compiler.device import flash

    flash(args.dir, write_flash=args.write_flash)
    print(
        f"done; talk to it with: python -m compiler run {args.dir} --port /dev/ttyUSB0 "
        "--input X.npy"
    )
    return 0


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other error of the CLI."""

    def error(self, message: str):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m compiler",
        description="Compile DeBut (Deformable Butterfly) PyTorch models into verified FPGA "
        "accelerators with open tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

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
        description="Fold, balance, calibrate and quantise the model to fixed point "
        "(docs/fixed-point.md), run the integer golden model on the test split and compare it "
        "with the float model; writes DIR/manifest.json, the 'model' and 'quant' sections of "
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
        help="stop after the core's Verilog and its quick check (no Yosys/nextpnr); the same as "
        "--stop-after check",
    )
    build.add_argument(
        "--stop-after",
        metavar="STEP",
        choices=[step.name for step in pipeline.BUILD_STEPS],
        help="stop after this build step: " + ", ".join(s.name for s in pipeline.BUILD_STEPS),
    )
    build.add_argument(
        "--clock-mhz",
        type=_clock,
        metavar="F|auto",
        help="design clock in MHz, exactly (the PLL must make it within 0.5%%), or 'auto': the "
        "fastest clock the PLL makes that the routed design meets (the default on the ULX3S; "
        "the iCEBreaker runs at its 12 MHz oscillator)",
    )
    build.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    build.add_argument(
        "--netlist-sim",
        dest="netlist_vectors",
        type=int,
        default=0,
        metavar="N",
        help="also simulate the synthesised netlist of the board top at its pins (ECP5 cell "
        "models; Verilator, else Icarus): PING, the self-test at full speed and N vectors over "
        "the UART, against the golden model (default 0, off)",
    )
    add_output_options(build, per_board=True)
    build.set_defaults(run=cmd_build)

    sim = commands.add_parser(
        "sim",
        help="simulate the core's Verilog (cocotb + Verilator) against the golden model",
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
        default="verilator",
        choices=SIMULATORS,
        help="Verilog simulator: verilator (default; a compiled model, cached by the core's "
        "content) or icarus (no C++ build, but far slower per cycle on large cores)",
    )
    sim.add_argument(
        "--waves", action="store_true", help="write a waveform file (Verilator: VCD; Icarus: FST)"
    )
    sim.add_argument(
        "--seed", dest="sim_seed", type=int, default=0, help="seed of stalls and random vectors"
    )
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
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a line already printed by _Parser.error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.run(args)
    except ToolError as exc:  # the tool's own last lines follow the error line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CompilerError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
