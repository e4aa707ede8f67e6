"""The state one build carries from step to step: the command's inputs, and each step's
products (None until that step has run). A step sets only its own products."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compiler.options import Options

if TYPE_CHECKING:  # the products' types, named without importing torch or the simulators
    from boards.harness import ClockPlan
    from boards.nextpnr import NextpnrReport
    from boards.registry import Board
    from compiler.artifacts import ModelSection, Resources, SweepPoint
    from compiler.frontend.modelfile import LoadedModel
    from compiler.ir import Graph
    from compiler.lower import Lowered
    from compiler.quantization import Data, Quantized
    from compiler.verification import TopCheck
    from sim.runner import SimResult

__all__ = ["BoardBuild", "BuildState"]


@dataclass
class BoardBuild:
    """What the board steps made: the board, its clock and baud rate, the self-test ROM's
    inputs and golden checksum, the design id PING reports, the working folder, Yosys's cell
    counts and LUT mapper, and nextpnr's report."""

    board: Board
    clock: ClockPlan
    baud: int
    selftest: np.ndarray
    checksum: int
    design_id: int
    workdir: Path
    auto_clock: bool = False  # the clock is chosen from the routed design
    cells: dict[str, int] | None = None
    mapper: str | None = None
    nextpnr: NextpnrReport | None = None
    critical_path: dict | None = None  # of the main clock, from nextpnr's JSON report
    passes: list[dict] = field(default_factory=list)  # target, Fmax reached, met: per pass
    clock_reason: str = ""


@dataclass(eq=False)
class BuildState:
    """One build: the command, model and options, the folder the steps write into
    (``out_dir``), the steps planned, and each step's products."""

    command: str
    model_path: Path
    options: Options
    out_dir: Path
    plan: tuple[str, ...]  # the steps this run takes, in order
    progress: Callable[[str], None] = print

    # load
    loaded: LoadedModel | None = None
    data: Data | None = None
    # summarize
    model: ModelSection | None = None
    float_predictions: np.ndarray | None = None  # the float model's argmax on the test data
    # frontend
    ir: Graph | None = None  # as the front end made it
    # quantize, sweep
    quantized: Quantized | None = None
    sweep: tuple[SweepPoint, ...] | None = None
    # lower, fit
    lowered: Lowered | None = None
    board_estimate: Resources | None = None  # the core and the board harness
    misfits: tuple[str, ...] = ()
    # verilog, check, simulate
    verilog: Path | None = None
    check: SimResult | None = None  # the quick check
    sim: SimResult | None = None  # the sim command's simulation
    # harness, synth, pnr, netlist, pack
    board_build: BoardBuild | None = None
    netlist_check: TopCheck | None = None  # the board top's netlist over its UART
    bitstream: Path | None = None

    seconds: dict[str, float] = field(default_factory=dict)
    # where the records say the files are: the folder the work will be moved to, when it is not
    # out_dir itself (see compiler.folders)
    record_dir: Path | None = None

    def relocate(self, root: Path) -> None:
        """The steps' files were moved from ``out_dir`` to ``root``: follow them."""
        old = self.out_dir

        def moved(path: Path | None) -> Path | None:
            return None if path is None else root / Path(path).relative_to(old)

        self.verilog, self.bitstream = moved(self.verilog), moved(self.bitstream)
        if self.board_build is not None:
            self.board_build.workdir = moved(self.board_build.workdir)
        self.out_dir, self.record_dir = root, None

    def recorded(self, path: Path) -> str:
        """``path`` (under ``out_dir``) as the records name it."""
        if self.record_dir is None:
            return str(path)
        return str(self.record_dir / Path(path).relative_to(self.out_dir))

    def will_run(self, step: str) -> bool:
        return step in self.plan

    def say(self, line: str) -> None:
        """A progress line inside the current step."""
        self.progress(f"  {line}")
