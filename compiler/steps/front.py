"""Steps on the model: read it and its data, summarise it, turn it into the IR, quantise it."""

from __future__ import annotations

from dataclasses import replace

from compiler.artifacts import SweepPoint
from compiler.console import percent, table
from compiler.datasets import check_labels
from compiler.frontend.convert import to_graph
from compiler.frontend.modelfile import load_model
from compiler.frontend.summary import predict, summarize
from compiler.plots import plot_accuracy_vs_bits
from compiler.quantization import load_data, quantize_graph
from compiler.steps.state import BuildState

__all__ = ["frontend", "load", "quantize", "summarize_model", "sweep"]


def load(state: BuildState) -> None:
    """Read the model file, and the data it is calibrated and tested on."""
    loaded = load_model(state.model_path, trust_pickle=state.options.trust_pickle)
    state.data = load_data(loaded.dataset, state.options.calib, loaded.input_shape)
    state.loaded = loaded
    state.say(
        f"{state.model_path}: input shape {loaded.input_shape}, preprocessing "
        f"x * {loaded.preprocessing.scale:g} + {loaded.preprocessing.offset:g}"
    )


def summarize_model(state: BuildState) -> None:
    """Parameters and MACs per layer against the dense equivalent, and the float model's test
    accuracy."""
    loaded, data = state.loaded, state.data
    summary = summarize(loaded.model, loaded.input_shape)
    accuracy = None
    if len(data.test):
        outputs = predict(loaded, data.test)
        state.float_predictions = outputs.argmax(axis=1)
        if data.test_labels is not None:
            check_labels(data.test_labels, outputs.shape[1], data.test_source)
            accuracy = float((state.float_predictions == data.test_labels).mean())
    state.model = replace(summary, float_accuracy=accuracy)
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
            *[""] * 4,
            f"{summary.params:,}",
            f"{summary.macs:,}",
            f"{summary.dense_params:,}",
            f"{1 - summary.params / summary.dense_params:.1%}" if summary.dense_params else "",
        ]
    )
    lines = table(rows, right={2, 3, 4, 5, 6, 7, 8})
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    lines.append("chains (application order, [p, q, r, s, t] per factor):")
    for layer in summary.layers:
        shape = layer.chain.shape.value if len(layer.chain) > 1 else "dense"
        lines.append(f"  {layer.name}: {layer.chain}  ({shape})")
    if accuracy is not None:
        lines.append(f"test accuracy (float): {accuracy:.2%} on {data.test_source}")
    else:
        why = (
            data.test_source
            if len(data.test)
            else "the model names no data set; pass --calib F.npz"
        )
        lines.append(f"test accuracy: not measured ({why})")
    for line in lines:
        state.say(line)


def frontend(state: BuildState) -> None:
    """The PyTorch model to the IR."""
    state.ir = to_graph(state.loaded)


def quantize(state: BuildState) -> None:
    """Fold, balance, calibrate and quantise the IR; the golden model against the float model."""
    options, data = state.options, state.data
    q = quantize_graph(
        state.ir,
        data,
        act_bits=options.act_bits,
        weight_bits=options.weight_bits,
        float_predictions=state.float_predictions,
    )
    state.quantized = q
    state.say(
        f"{options.act_bits}-bit activations, {options.weight_bits}-bit weights; calibration: "
        f"{data.calibration_source}; test: {data.test_source}"
    )
    agreement = "n/a" if q.agreement is None else f"{q.agreement:.2%}"
    state.say(
        f"accuracy: float {percent(state.model.float_accuracy)}, fixed point "
        f"{percent(q.fixed_accuracy)}, argmax agreement {agreement}"
    )
    saturated = {k: v for k, v in q.saturations.items() if v}
    state.say(f"saturations on the calibration data: {saturated or 'none'}")
    state.say("formats (sW.F = signed W bits, F fractional; u = unsigned):")
    state.say(f"  input {q.graph.input_format}")
    for op in q.graph.layers:
        lq = op.quant
        state.say(
            f"  {op.name}: weights {' '.join(map(str, lq.weight_formats))}; outputs "
            f"{' '.join(map(str, lq.out_formats))}; accumulators {list(lq.acc_widths)} bits"
        )


def sweep(state: BuildState) -> None:
    """Fixed-point accuracy at each of ``options.sweep_bits`` (activations = weights), and its
    plot beside the float accuracy."""
    points = []
    for bits in state.options.sweep_bits:
        q = quantize_graph(
            state.ir,
            state.data,
            act_bits=bits,
            weight_bits=bits,
            float_predictions=state.float_predictions,
        )
        points.append(SweepPoint(bits, q.fixed_accuracy, q.agreement))
        state.say(f"{bits} bits: fixed-point accuracy {percent(q.fixed_accuracy)}")
    state.sweep = tuple(points)
    float_accuracy = state.model.float_accuracy
    if float_accuracy is not None and points:
        plot = plot_accuracy_vs_bits(
            [p.bits for p in points],
            [p.fixed_accuracy for p in points],
            float_accuracy,
            state.out_dir / "accuracy_vs_bits.png",
            f"{state.model_path.name}: accuracy against bit width",
        )
        state.say(f"made {state.recorded(plot)}")
