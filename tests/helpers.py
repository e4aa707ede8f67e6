"""Helpers shared by the tests (not part of the product)."""

from __future__ import annotations

from pathlib import Path

from compiler import pipeline
from compiler.options import Options
from compiler.steps.state import BuildState

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def quiet(line: str) -> None:
    """A progress callback that prints nothing."""


def quantized(model: str | Path, **options) -> BuildState:
    """The build pipeline through quantisation, writing nothing: ``state.quantized.graph`` is
    the quantised IR, ``state.model.float_accuracy`` the float model's test accuracy."""
    return pipeline.run(
        "build", model, Options(**options), stop_after="quantize", progress=quiet, write=False
    )


class QuantizedModel:
    """What the tests read of a quantised model, by the names they use."""

    def __init__(self, state: BuildState) -> None:
        self.state = state
        self.loaded = state.loaded
        self.data = state.data
        self.graph = state.quantized.graph
        self.test_run = state.quantized.test_run
        self.fixed_accuracy = state.quantized.fixed_accuracy
        self.saturations = state.quantized.saturations
        self.float_accuracy = state.model.float_accuracy


def quantize_model(model: str | Path, **options) -> QuantizedModel:
    """:func:`quantized`, by the names the tests use."""
    return QuantizedModel(quantized(model, **options))
