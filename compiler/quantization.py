"""Quantisation and its measure: the data a model is calibrated and tested on, the pass pipeline
from the front end's IR to a quantised graph, and the golden model's accuracy beside the float
model's (whose predictions the front end supplies: nothing here imports torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.datasets import DatasetRef, load_npz, load_split
from compiler.golden import IntegerRun, quantize_input, run_integer
from compiler.ir import Graph
from compiler.passes import quantization_passes, run_passes
from debut.errors import DatasetError
from debut.preprocessing import Preprocessing

__all__ = ["Data", "Quantized", "load_data", "quantize_graph"]


@dataclass(frozen=True)
class Data:
    """Raw calibration features, and raw test features with labels (None when unknown); either
    part may be missing (no rows) when the model names no data set and none was given."""

    calibration: np.ndarray
    calibration_source: str
    test: np.ndarray
    test_labels: np.ndarray | None
    test_source: str


def load_data(dataset: DatasetRef | None, calib: str | None, input_shape: tuple[int, ...]) -> Data:
    """Calibration: ``calib`` (an .npz) if given, else the data set's training split. Test: the
    data set's test split, else the ``calib`` file (with its labels, if any)."""
    split = load_split(dataset) if dataset is not None else None
    empty = np.empty((0, *input_shape))
    if calib is not None:
        x_cal, y_cal = load_npz(calib)
        cal_source = f"{calib} ({len(x_cal)} samples)"
    elif split is not None:
        x_cal, y_cal = split.x_train, split.y_train
        cal_source = f"{dataset.name} training split ({len(x_cal)} samples)"
    else:
        return Data(empty, "no data", empty, None, "no data")
    if x_cal.shape[1:] != tuple(input_shape):
        raise DatasetError(
            f"calibration features must have shape (N, {', '.join(map(str, input_shape))}), "
            f"not {x_cal.shape}"
        )
    if split is not None:
        test_source = f"{dataset.name} test split ({len(split.x_test)} samples)"
        return Data(x_cal, cal_source, split.x_test, split.y_test, test_source)
    return Data(x_cal, cal_source, x_cal, y_cal, cal_source)


@dataclass(frozen=True)
class Quantized:
    """A quantised graph and how it does on the data: the golden model's test outputs, its
    accuracy (None without labels), its argmax agreement with the float model and the values
    that saturated per tensor on the calibration data."""

    graph: Graph
    act_bits: int
    weight_bits: int
    fixed_accuracy: float | None
    agreement: float | None
    saturations: dict[str, int]
    test_run: IntegerRun


def quantize_graph(
    graph: Graph,
    data: Data,
    *,
    act_bits: int,
    weight_bits: int,
    float_predictions: np.ndarray | None = None,
) -> Quantized:
    """Run the quantisation passes on the front end's ``graph`` with ``data``'s calibration
    features, then the golden model on its test features. ``float_predictions``: the float
    model's argmax on the test features, for the agreement."""
    if len(data.calibration) == 0:
        raise DatasetError(
            "the model names no built-in data set; pass --calib F.npz with raw features 'X' "
            "(and labels 'y') for calibration"
        )
    preprocessing: Preprocessing = graph.preprocessing
    calibration = preprocessing.apply(data.calibration)
    graph = run_passes(graph, quantization_passes(calibration, act_bits, weight_bits))
    calibration_run = run_integer(graph, quantize_input(graph, data.calibration))
    saturations = {
        "input": graph.input_format.saturations(calibration),
        **calibration_run.saturations,
    }
    test_run = run_integer(graph, quantize_input(graph, data.test))
    fixed = test_run.output.argmax(axis=1)
    labels = data.test_labels
    return Quantized(
        graph=graph,
        act_bits=act_bits,
        weight_bits=weight_bits,
        fixed_accuracy=None if labels is None else float((fixed == labels).mean()),
        agreement=None if float_predictions is None else float((fixed == float_predictions).mean()),
        saturations=saturations,
        test_run=test_run,
    )
