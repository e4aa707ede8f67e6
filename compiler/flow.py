"""The compile flow shared by the commands: load, front end, quantise, evaluate.

Each command calls the stages up to its own with its own options, so nothing it reports is
stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler.datasets import load_npz, load_split
from compiler.errors import DatasetError
from compiler.execute import IntegerRun, quantize_input, run_integer
from compiler.frontend import to_graph
from compiler.ir import Graph
from compiler.modelfile import LoadedModel, load_model
from compiler.pipeline import quantization_steps, run_steps
from compiler.summary import predict

__all__ = ["Data", "Quantized", "load_data", "quantize_model"]


@dataclass(frozen=True)
class Data:
    """Raw calibration features, and raw test features with labels (None when unknown)."""

    calibration: np.ndarray
    calibration_source: str
    test: np.ndarray
    test_labels: np.ndarray | None
    test_source: str


def load_data(loaded: LoadedModel, calib: str | None) -> Data:
    """Calibration: ``--calib F`` if given, else the model's training split. Test: the model's
    test split, else the ``--calib`` file (with its labels, if any)."""
    split = load_split(loaded.dataset) if loaded.dataset is not None else None
    if calib is not None:
        x_cal, y_cal = load_npz(calib)
        cal_source = f"{calib} ({len(x_cal)} samples)"
    elif split is not None:
        x_cal, y_cal = split.x_train, split.y_train
        cal_source = f"{loaded.dataset.name} training split ({len(x_cal)} samples)"
    else:
        raise DatasetError(
            f"{loaded.path} names no built-in data set; pass --calib F.npz with raw features 'X' "
            "(and labels 'y') for calibration"
        )
    expected = loaded.input_shape
    if x_cal.shape[1:] != expected:
        raise DatasetError(
            f"calibration features must have shape (N, {', '.join(map(str, expected))}), "
            f"not {x_cal.shape}"
        )
    if split is not None:
        return Data(
            x_cal,
            cal_source,
            split.x_test,
            split.y_test,
            f"{loaded.dataset.name} test split ({len(split.x_test)} samples)",
        )
    return Data(x_cal, cal_source, x_cal, y_cal, cal_source)


@dataclass
class Quantized:
    """A quantised model and its measured quality."""

    loaded: LoadedModel
    graph: Graph
    data: Data
    act_bits: int
    weight_bits: int
    float_accuracy: float | None
    fixed_accuracy: float | None
    agreement: float
    saturations: dict[str, int]  # per tensor, on the calibration data
    test_run: IntegerRun
    timings: dict[str, float] = field(default_factory=dict)

    def quant_section(self) -> dict:
        """The "quant" section of report.json."""
        formats = {"input": self.graph.input_format.to_list()}
        for op in self.graph.layers:
            q = op.quant
            names = [f"{op.name}.f{k}" for k in range(len(op.chain) - 1)] + [op.name]
            for k, name in enumerate(names):
                formats[name] = q.out_formats[k].to_list()
                formats[f"{op.name}.w{k}"] = q.weight_formats[k].to_list()
            formats[f"{op.name}.bias"] = [None, q.bias_frac, True]
        return {
            "act_bits": self.act_bits,
            "weight_bits": self.weight_bits,
            "formats": formats,
            "float_accuracy": self.float_accuracy,
            "fixed_accuracy": self.fixed_accuracy,
            "agreement": self.agreement,
            "saturations": self.saturations,
            "calibration": self.data.calibration_source,
            "test": self.data.test_source,
        }


def quantize_model(
    model: str | Path | LoadedModel,
    *,
    act_bits: int = 8,
    weight_bits: int = 8,
    calib: str | None = None,
    trust_pickle: bool = False,
    data: Data | None = None,
) -> Quantized:
    """Load (unless given), quantise and evaluate a model against its float twin."""
    timings: dict[str, float] = {}
    loaded = (
        model if isinstance(model, LoadedModel) else load_model(model, trust_pickle=trust_pickle)
    )
    data = data or load_data(loaded, calib)
    graph = to_graph(loaded)
    steps = quantization_steps(loaded.preprocessing.apply(data.calibration), act_bits, weight_bits)
    graph = run_steps(graph, steps, timings)
    calibration_run = run_integer(graph, quantize_input(graph, data.calibration))
    saturations = {
        "input": graph.input_format.saturations(loaded.preprocessing.apply(data.calibration)),
        **calibration_run.saturations,
    }
    test_run = run_integer(graph, quantize_input(graph, data.test))
    float_pred = predict(loaded, data.test).argmax(axis=1)
    fixed_pred = test_run.output.argmax(axis=1)
    labels = data.test_labels
    return Quantized(
        loaded=loaded,
        graph=graph,
        data=data,
        act_bits=act_bits,
        weight_bits=weight_bits,
        float_accuracy=float((float_pred == labels).mean()) if labels is not None else None,
        fixed_accuracy=float((fixed_pred == labels).mean()) if labels is not None else None,
        agreement=float((float_pred == fixed_pred).mean()),
        saturations=saturations,
        test_run=test_run,
        timings=timings,
    )
