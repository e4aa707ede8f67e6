"""The build folder's two records, typed: ``manifest.json`` and ``report.json`` (docs/report.md).

The manifest holds what later commands and readers need without the model file: every tensor's
format, the integer weights and their hash, the options, the core's stream interface and, after a
board build, what the bitstream carries. The report holds what each step measured. Both are
frozen dataclasses with a schema version, written atomically by :func:`write_build` and read back
by :func:`read_manifest` and :func:`read_report` only; a folder written by an older schema gets a
clear "rebuild it" error. JSON keys follow the field names (``json`` metadata where a name is not
a Python identifier).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler.ir import Activation, ChainOp, Graph, LayerQuant, frozen_array
from debut.chain import Chain
from debut.errors import ArtifactError, ModelFormatError
from debut.files import write_atomic
from debut.fixed import Fixed
from debut.interface import CoreInterface
from debut.preprocessing import Preprocessing

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "REPORT_SCHEMA",
    "ArtifactsSection",
    "BoardRecord",
    "CellUse",
    "ClockPass",
    "CriticalPath",
    "HardwareSection",
    "LayerRecord",
    "LayerSummary",
    "Manifest",
    "ModelSection",
    "QuantSection",
    "Report",
    "Resources",
    "SelftestRecord",
    "SelftestSummary",
    "SimSection",
    "StageReport",
    "SweepPoint",
    "SynthSection",
    "ThroughputSection",
    "read_manifest",
    "read_report",
    "weights_hash",
    "write_build",
]

MANIFEST_FORMAT = "debut-fpga-manifest"
MANIFEST_VERSION = 2
REPORT_SCHEMA = 2


# ---- the report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSummary:
    """One weight layer: its chain (a dense layer as the one-factor chain) and its costs per
    input (a convolution's MACs over all its output positions)."""

    name: str
    kind: str
    in_features: int = field(metadata={"json": "in"})
    out_features: int = field(metadata={"json": "out"})
    chain: Chain
    params: int  # every parameter of the layer, bias included
    macs: int
    dense_params: int  # weight parameters of the dense layer of the same shape, plus bias


@dataclass(frozen=True)
class ModelSection:
    params: int  # all parameters of the model
    macs: int
    dense_params: int  # the same model with every DeBut layer dense
    layers: tuple[LayerSummary, ...]
    float_accuracy: float | None = None


@dataclass(frozen=True)
class SweepPoint:
    bits: int
    fixed_accuracy: float | None
    agreement: float


@dataclass(frozen=True)
class QuantSection:
    act_bits: int
    weight_bits: int
    formats: dict[str, list]  # tensor -> [width, frac, signed]; a bias as [None, frac, True]
    float_accuracy: float | None
    fixed_accuracy: float | None
    agreement: float | None
    saturations: dict[str, int]
    calibration: str
    test: str
    sweep: tuple[SweepPoint, ...] | None = None


@dataclass(frozen=True)
class Resources:
    dsp: int
    lut: int
    ff: int
    ebr: int

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            *(getattr(self, k) + getattr(other, k) for k in ("dsp", "lut", "ff", "ebr"))
        )


@dataclass(frozen=True)
class StageReport:
    name: str
    factor: list[int]
    macs: int
    multipliers: int
    ii_cycles: int
    issue_steps: int
    queue_slots: int
    latency_cycles: int
    estimate: Resources


@dataclass(frozen=True)
class HardwareSection:
    ii_cycles: int
    latency_cycles: int
    multipliers: int
    dsp_primitive: str | None
    multiplier_efficiency: float
    in_per_beat: int
    out_per_beat: int
    stage_registers: bool
    estimate: Resources  # the core alone
    stages: tuple[StageReport, ...]
    board_estimate: Resources | None = None  # the core and the board harness around it
    misfits: tuple[str, ...] = ()  # what of board_estimate exceeds the board


@dataclass(frozen=True)
class SimSection:
    simulator: str
    vectors: int
    mismatches: int
    cycles_per_vector: float
    framing_errors: int = 0
    timed_out: bool = False
    latency_cycles: int | None = None
    vectors_per_second: float | None = None


@dataclass(frozen=True)
class CellUse:
    used: int
    available: int


@dataclass(frozen=True)
class SelftestSummary:
    vectors: int
    checksum: int


@dataclass(frozen=True)
class ClockPass:
    """One place-and-route pass of a board build: the clock it aimed at and the Fmax reached."""

    target_mhz: float
    fmax_mhz: float
    met: bool


@dataclass(frozen=True)
class CriticalPath:
    """The slowest path of the design clock, as nextpnr reports it."""

    start: str = field(metadata={"json": "from"})  # cell/port
    end: str = field(metadata={"json": "to"})
    delay_ns: float
    logic_ns: float
    routing_ns: float
    cells: int


@dataclass(frozen=True)
class SynthSection:
    board: str
    device: str
    package: str
    clock_mhz: float
    requested_clock_mhz: float
    pll: dict[str, Any] | None
    clock_net: str
    fmax_mhz: float | None
    timing_met: bool
    utilization: dict[str, CellUse]
    yosys_cells: dict[str, int]
    lut_mapper: str
    seed: int
    estimate: Resources
    baud: int
    selftest: SelftestSummary
    design_id: int
    tools: dict[str, str | None]
    rtl_check: SimSection | None = None
    netlist_check: SimSection | None = None
    logs: dict[str, str] = field(default_factory=dict)
    clock_mode: str = "fixed"  # "auto": chosen from the routed design
    clock_reason: str = ""
    clock_passes: tuple[ClockPass, ...] = ()
    critical_path: CriticalPath | None = None


@dataclass(frozen=True)
class ThroughputSection:
    multiplier_efficiency: float
    inferences_per_cycle: float
    clock_mhz: float | None = None
    ii_cycles: int | None = None
    latency_cycles: int | None = None
    latency_us: float | None = None
    inferences_per_s: float | None = None
    macs_per_s: float | None = None
    inferences_per_s_per_dsp: float | None = None


@dataclass(frozen=True)
class ArtifactsSection:
    verilog: str | None = None
    bitstream: str | None = None


@dataclass(frozen=True)
class Report:
    """Everything a command measured, one section per stage (None where it did not run), and
    the seconds each build step took."""

    command: str
    model: ModelSection | None = None
    quant: QuantSection | None = None
    hardware: HardwareSection | None = None
    sim: SimSection | None = None
    synth: SynthSection | None = None
    throughput: ThroughputSection | None = None
    artifacts: ArtifactsSection | None = None
    time_per_step_s: dict[str, float] = field(default_factory=dict)
    schema: int = REPORT_SCHEMA


# ---- the manifest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFileRecord:
    path: str
    sha256: str


@dataclass(frozen=True)
class TensorRecord:
    features: int
    format: Fixed


@dataclass(frozen=True)
class LayerRecord:
    """One quantised chain layer: its chain, activation, formats, accumulator widths, integer
    weights (flat, ``twiddle`` layout) and bias, and the float values they were rounded from."""

    name: str
    chain: Chain
    activation: str
    in_format: Fixed
    weight_formats: tuple[Fixed, ...]
    out_formats: tuple[Fixed, ...]
    acc_widths: tuple[int, ...]
    bias_frac: int
    weights: list[int]
    bias: list[int]
    float_weights: list[float]
    float_bias: list[float]


@dataclass(frozen=True)
class SelftestRecord:
    """The self-test ROM: its input vectors and the CRC-32 of their golden outputs."""

    vectors: int
    checksum: int
    inputs: list[list[int]]


@dataclass(frozen=True)
class BoardRecord:
    """What a board build put on the chip: board, clock, baud rate, self-test and design id."""

    board: str
    clock_mhz: float
    baud: int
    selftest: SelftestRecord
    design_id: int


@dataclass(frozen=True)
class Manifest:
    """A quantised network and what was built of it (see the module's documentation)."""

    model: ModelFileRecord
    options: dict[str, Any]
    preprocessing: Preprocessing
    input: TensorRecord
    output: TensorRecord
    layers: tuple[LayerRecord, ...]
    weights_sha256: str
    tool_versions: dict[str, str | None]
    git_revision: str | None
    interface: CoreInterface | None = None
    board: BoardRecord | None = None
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION

    @classmethod
    def of_graph(
        cls,
        graph: Graph,
        *,
        model_path: Path,
        options: dict[str, Any],
        tool_versions: dict[str, str | None],
        git_revision: str | None,
        interface: CoreInterface | None = None,
        board: BoardRecord | None = None,
    ) -> Manifest:
        layers = []
        for op in graph.layers:
            q = op.quant
            layers.append(
                LayerRecord(
                    name=op.name,
                    chain=op.chain,
                    activation=op.activation.value,
                    in_format=q.in_format,
                    weight_formats=q.weight_formats,
                    out_formats=q.out_formats,
                    acc_widths=q.acc_widths,
                    bias_frac=q.bias_frac,
                    weights=q.int_twiddle.tolist(),
                    bias=q.int_bias.tolist(),
                    float_weights=op.twiddle.tolist(),
                    float_bias=op.bias.tolist(),
                )
            )
        return cls(
            model=ModelFileRecord(
                str(model_path), hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
            ),
            options=options,
            preprocessing=graph.preprocessing,
            input=TensorRecord(graph.in_features, graph.input_format),
            output=TensorRecord(graph.out_features, graph.output_format),
            layers=tuple(layers),
            weights_sha256=weights_hash(graph),
            tool_versions=tool_versions,
            git_revision=git_revision,
            interface=interface,
            board=board,
        )

    def graph(self) -> Graph:
        """The quantised IR recorded here (checked against ``weights_sha256``), on which the
        golden model runs."""
        fmt = self.input.format
        ops = []
        for layer in self.layers:
            quant = LayerQuant(
                in_format=fmt,
                weight_formats=tuple(layer.weight_formats),
                out_formats=tuple(layer.out_formats),
                int_twiddle=frozen_array(layer.weights, np.int64),
                int_bias=frozen_array(layer.bias, np.int64),
                acc_widths=tuple(layer.acc_widths),
            )
            ops.append(
                ChainOp(
                    name=layer.name,
                    chain=layer.chain,
                    twiddle=frozen_array(layer.float_weights, np.float64),
                    bias=frozen_array(layer.float_bias, np.float64),
                    activation=Activation(layer.activation),
                    quant=quant,
                )
            )
            fmt = quant.out_formats[-1]
        graph = Graph(
            in_features=self.input.features,
            preprocessing=self.preprocessing,
            ops=tuple(ops),
            input_format=self.input.format,
        )
        if weights_hash(graph) != self.weights_sha256:
            raise ArtifactError("the manifest's weights do not match its weights_sha256")
        return graph


def weights_hash(graph: Graph) -> str:
    """SHA-256 over every layer's chain, formats, integer weights and biases."""
    digest = hashlib.sha256()
    digest.update(json.dumps(graph.input_format.to_list()).encode())
    for op in graph.layers:
        q = op.quant
        header = [
            op.name,
            op.chain.as_list(),
            op.activation.value,
            [f.to_list() for f in q.weight_formats],
            [f.to_list() for f in q.out_formats],
        ]
        digest.update(json.dumps(header).encode())
        digest.update(np.ascontiguousarray(q.int_twiddle, dtype="<i8").tobytes())
        digest.update(np.ascontiguousarray(q.int_bias, dtype="<i8").tobytes())
    return digest.hexdigest()


# ---- writing and reading -----------------------------------------------------------------------


def write_build(out_dir: Path, report: Report, manifest: Manifest | None = None) -> list[Path]:
    """Write ``report.json`` (and ``manifest.json``, when given) into ``out_dir``, atomically."""
    written = []
    if manifest is not None:
        written.append(write_atomic(out_dir / "manifest.json", _dumps(manifest)))
    written.append(write_atomic(out_dir / "report.json", _dumps(report)))
    return written


def read_manifest(build_dir: Path) -> Manifest:
    """``build_dir/manifest.json``; :class:`ArtifactError` when it is missing, unreadable or of
    another schema."""
    return _read(Path(build_dir) / "manifest.json", Manifest, "version", MANIFEST_VERSION)


def read_report(build_dir: Path) -> Report:
    """``build_dir/report.json``, as :func:`read_manifest`."""
    return _read(Path(build_dir) / "report.json", Report, "schema", REPORT_SCHEMA)


def _read(path: Path, cls: type, key: str, version: int):
    if not path.is_file():
        raise ArtifactError(
            f"{path.parent} has no {path.name}; build first (python -m compiler build MODEL)"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} is not a build record; rebuild it")
    if data.get(key) != version:
        raise ArtifactError(
            f"{path} has schema {data.get(key)!r}, this compiler reads {version}: it was written "
            "by another version of the compiler; rebuild it"
        )
    try:
        return _from_json(cls, data)
    except (KeyError, TypeError, ValueError, ModelFormatError) as exc:
        raise ArtifactError(f"{path} is damaged ({exc}); rebuild it") from None


def _dumps(record) -> str:
    return json.dumps(_to_json(record), indent=2) + "\n"


def _json_name(f: dataclasses.Field) -> str:
    return f.metadata.get("json", f.name)


def _to_json(value):
    """Plain JSON data of a record: dataclasses by field, formats and chains as lists."""
    if isinstance(value, Fixed):
        return value.to_list()
    if isinstance(value, Chain):
        return value.as_list()
    if isinstance(value, CoreInterface):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_json_name(f): _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(kind, data):
    """The value of type ``kind`` whose JSON data is ``data`` (the inverse of ``_to_json``)."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if data is None and type(None) in options:
            return None
        (inner,) = [t for t in options if t is not type(None)]
        return _from_json(inner, data)
    if origin in (tuple, list):
        if not isinstance(data, list):
            raise TypeError(f"expected a list, not {data!r}")
        (item, *_) = typing.get_args(kind) or (Any,)
        items = [_from_json(item, v) for v in data]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, not {data!r}")
        _, item = typing.get_args(kind)
        return {k: _from_json(item, v) for k, v in data.items()}
    if kind is Fixed:
        return Fixed.from_list(data)
    if kind is Chain:
        return Chain.from_list(data)
    if kind is CoreInterface:
        return CoreInterface.from_dict(data)
    if dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {kind.__name__}, not {data!r}")
        hints = typing.get_type_hints(kind)
        values = {}
        for f in dataclasses.fields(kind):
            name = _json_name(f)
            if name in data:
                values[f.name] = _from_json(hints[f.name], data[name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(f"{kind.__name__} lacks {name!r}")
        return kind(**values)
    if kind is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if kind in (int, float, str, bool) and not isinstance(data, kind):
        raise TypeError(f"expected {kind.__name__}, not {data!r}")
    return data
