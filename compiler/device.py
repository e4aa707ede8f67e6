"""A finished build and the device it runs on: flashing the bitstream, and inference and the
self-test over the host link, on a board or on the board top in the simulator. Both read the build
through its typed manifest (:mod:`compiler.artifacts`)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boards.link.host import HostDriver, InferenceRun, SerialTransport, SimulatedTop
from boards.link.protocol import DEFAULT_BAUD, Identity, SelftestResult
from boards.registry import get_board
from boards.tools import find_tool
from compiler.artifacts import Manifest, read_manifest
from compiler.lower import lower
from debut.errors import ArtifactError, OptionError, SimulationMismatch, ToolError

__all__ = ["DeviceRun", "check_input", "flash", "run_on_device"]

BOARD_DEADLINE_S = 5.0  # the longest a board may take to answer one request
SIM_DEADLINE_S = 600.0


def _board_build(build_dir: Path) -> Manifest:
    manifest = read_manifest(build_dir)
    if manifest.board is None:
        raise ArtifactError(
            f"{build_dir} holds no bitstream build (it was built with --no-synth?); run "
            "python -m compiler build MODEL --board B first"
        )
    return manifest


def flash(
    build_dir: Path, *, write_flash: bool = False, progress: Callable[[str], None] = print
) -> Path:
    """Load ``build_dir``'s bitstream onto its board with openFPGALoader (into SRAM, or the
    configuration flash with ``write_flash``). Returns the bitstream loaded."""
    manifest = _board_build(build_dir)
    board = get_board(manifest.board.board)
    bitstream = Path(build_dir) / board.bitstream_name
    if not bitstream.is_file():
        raise ArtifactError(f"{bitstream} is missing; the last build did not finish; rebuild")
    command = [find_tool("OPENFPGALOADER"), "-b", board.loader_board]
    if write_flash:
        command.append("-f")
    command.append(str(bitstream))
    where = "configuration flash" if write_flash else "SRAM (lost at power-off)"
    progress(f"loading {bitstream} into the {board.name}'s {where}: {' '.join(command)}")
    status = subprocess.run(command).returncode
    if status != 0:
        raise ToolError(
            f"openFPGALoader failed (exit status {status}): is the {board.name} plugged in, and "
            "may this user open its USB device (udev rules, or run as root)?"
        )
    return bitstream


def simulated_top(manifest: Manifest, raw: np.ndarray) -> SimulatedTop:
    """The build's board top (host link, self-test ROM, core) in the Amaranth simulator: the core
    lowered again with the build's options, the self-test ROM with the build's vectors (or the
    first rows of ``raw`` when the build made no board top)."""
    graph = manifest.graph()
    options = manifest.options
    lowered = lower(
        graph,
        budget=options.get("dsp_budget") or get_board(options["board"]).dsp,
        target_ii=options.get("target_ii"),
        stage_registers=bool(options.get("stage_registers")),
    )
    if manifest.board is not None:
        selftest = np.asarray(manifest.board.selftest.inputs, dtype=np.int64)
        design_id = manifest.board.design_id
    else:
        selftest = graph.input_format.quantize(graph.preprocessing.apply(raw[:8]))
        design_id = 0
    return SimulatedTop(lowered.network, selftest=selftest, design_id=design_id)


def check_input(raw, manifest: Manifest, progress: Callable[[str], None]) -> np.ndarray:
    """``raw`` as rows of the model's raw features: numbers, finite, at least one row; values
    that fall outside the input format after preprocessing saturate, as in the golden model,
    with a warning that counts them."""
    features = manifest.input.features
    array = np.asarray(raw)
    if array.dtype.kind not in "biuf":
        raise OptionError(f"--input must hold numbers, not {array.dtype}")
    array = np.atleast_2d(array.astype(np.float64))
    if array.ndim != 2 or array.shape[1] != features or len(array) == 0:
        raise OptionError(
            f"--input must have one or more rows of {features} features, not shape {array.shape}"
        )
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise OptionError(f"--input holds {bad} NaN or Inf value(s); the model takes finite ones")
    saturated = manifest.input.format.saturations(manifest.preprocessing.apply(array))
    if saturated:
        progress(
            f"warning: {saturated} input value(s) lie outside the input format "
            f"{manifest.input.format} after preprocessing and saturate, as in the golden model"
        )
    return array


@dataclass(frozen=True)
class DeviceRun:
    """What ``run`` measured: the device's identity, the inferences, the self-test result and
    whether its checksum matches the golden model's recorded at build time (None: no record)."""

    identity: Identity
    inference: InferenceRun
    selftest: SelftestResult
    checksum_matches: bool | None
    manifest: Manifest


def run_on_device(
    manifest: Manifest,
    build_dir: Path,
    raw: np.ndarray,
    *,
    port: str,
    baud: int | None = None,
    progress: Callable[[str], None] = print,
) -> DeviceRun:
    """Send ``raw`` features to the accelerator built in ``build_dir`` over its host link (a serial
    ``port``, or ``"sim"`` for the simulated board top), then run its self-test; raise
    :class:`SimulationMismatch` when the device carries another design or its self-test differs
    from the golden model. ``manifest``: ``build_dir``'s."""
    if manifest.interface is None:
        raise ArtifactError(f"{build_dir} holds no core; build it first")
    raw = check_input(raw, manifest, progress)
    record = manifest.board
    if port == "sim":
        transport = simulated_top(manifest, raw)
        progress(
            "using the simulated top: the board harness (UART lines at "
            f"{transport.divisor} cycles per bit, host link, self-test ROM, core) in the "
            "Amaranth simulator"
        )
    else:
        rate = baud or (record.baud if record else DEFAULT_BAUD)
        transport = SerialTransport(port, rate)
    # the simulated board runs thousands of times slower than a real one
    deadline = SIM_DEADLINE_S if port == "sim" else BOARD_DEADLINE_S
    driver = HostDriver(manifest.interface, manifest.preprocessing, transport, deadline_s=deadline)
    identity = driver.ping()
    if record is not None and identity.design_id != record.design_id:
        raise SimulationMismatch(
            f"the device carries design 0x{identity.design_id:08x}, not {build_dir}'s "
            f"0x{record.design_id:08x}: flash it first (python -m compiler flash {build_dir})"
        )
    inference = driver.infer(raw)
    result = driver.selftest()
    matches = None
    if record is not None:
        matches = result.checksum == record.selftest.checksum
        if not matches:
            raise SimulationMismatch(
                f"self-test checksum 0x{result.checksum:08x} differs from the golden model's "
                f"0x{record.selftest.checksum:08x} recorded at build time: the device computes "
                "wrong results"
            )
    return DeviceRun(identity, inference, result, matches, manifest)
