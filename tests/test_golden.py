"""The integer golden model against the float model, with tolerances derived from the formats."""

import itertools
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compiler.artifacts import Report, read_manifest, write_build
from compiler.frontend.convert import to_graph
from compiler.frontend.modelfile import LoadedModel, Preprocessing
from compiler.golden import factor_tensor_names, quantize_input, run_float, run_integer
from compiler.ir import LayerQuant
from compiler.nn.generate import search_chains
from compiler.nn.linear import DeButLinear
from compiler.options import Options
from compiler.passes import quantization_passes, run_passes
from compiler.passes.size_accumulators import accumulator_bounds
from compiler.pipeline import manifest_of
from debut.errors import ArtifactError, IRVerificationError, OptionError
from tests.helpers import quantize_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def random_network(seed: int, sizes, shape="any") -> nn.Sequential:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    layers = OrderedDict()
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        chains = list(search_chains(n_out, n_in, max_params=n_in * n_out, shape=shape))
        chain = chains[rng.integers(len(chains))]
        layers[f"fc{i}"] = DeButLinear(n_in, n_out, chain)
        if i < len(sizes) - 2:
            layers[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(layers).double().eval()


def quantized(model, x, act_bits, weight_bits):
    loaded = LoadedModel(
        model=model,
        path=Path("m.pt"),
        architecture=None,
        input_shape=(x.shape[1],),
        preprocessing=Preprocessing(),
    )
    graph = to_graph(loaded)
    return run_passes(graph, quantization_passes(x, act_bits, weight_bits))


def error_bound(graph, x):
    """Worst-case |golden - float| per output, propagated through the quantised weights:
    half an LSB at the input and at every requantisation, plus each weight's rounding times the
    float activation it multiplies. ReLU cannot increase an error."""
    _, trace = run_float(graph, x)
    fmt = graph.input_format
    err = np.full(x.shape, 0.5 * fmt.lsb)
    prev = x
    for op in graph.layers:
        q = op.quant
        names = factor_tensor_names(op)
        float_parts = op.chain.split(op.twiddle)
        int_parts = op.chain.split(q.int_twiddle)
        for k, factor in enumerate(op.chain.factors):
            w_q = factor.materialize(int_parts[k] * q.weight_formats[k].lsb)
            w = factor.materialize(float_parts[k])
            err = err @ np.abs(w_q).T + np.abs(prev) @ np.abs(w_q - w).T
            if k == len(op.chain) - 1:
                err = err + np.abs(q.int_bias * 2.0**-q.bias_frac - op.bias)
            err = err + 0.5 * q.out_formats[k].lsb
            prev = trace[names[k]]
    return err, prev


@pytest.mark.parametrize(
    ("seed", "sizes", "bits", "shape"),
    [
        (0, (24, 36, 10), (8, 8), "monotonic"),
        (1, (20, 30, 12), (10, 6), "bulging"),
        (2, (16, 16, 16, 4), (12, 12), "any"),
        (3, (12, 18, 6), (4, 5), "any"),
        (4, (12, 8), (16, 16), "any"),
        (5, (9, 15, 7), (3, 2), "any"),
    ],
)
def test_golden_within_format_derived_bound_of_float(seed, sizes, bits, shape):
    model = random_network(seed, sizes, shape)
    x = np.random.default_rng(seed).standard_normal((200, sizes[0]))
    graph = quantized(model, x, *bits)
    x = 0.8 * x  # inside the calibrated ranges, so that no tensor saturates
    run = run_integer(graph, quantize_input(graph, x))
    assert sum(run.saturations.values()) == 0, "the bound assumes no saturation"
    bound, reference = error_bound(graph, x)
    got = graph.output_format.to_float(run.output)
    assert np.all(np.abs(got - reference) <= bound * (1 + 1e-9))
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(reference, torch_out, atol=1e-9)  # balancing kept the product


def test_formats_hold_the_calibration_data():
    model = random_network(7, (30, 40, 40, 10))
    x = np.random.default_rng(7).standard_normal((300, 30)) * 3
    graph = quantized(model, x, 8, 8)
    _, trace = run_float(graph, x)
    assert graph.input_format.saturations(x) == 0
    for op in graph.layers:
        for name, fmt in zip(factor_tensor_names(op), op.quant.out_formats, strict=True):
            assert fmt.saturations(trace[name]) == 0, name
            # and the format is the tightest: one more fractional bit would overflow
            tighter = type(fmt)(fmt.width, fmt.frac + 1, fmt.signed)
            assert tighter.saturations(trace[name]) > 0, name


def test_accumulator_bounds_match_brute_force_over_input_corners():
    model = random_network(3, (6, 12, 4))
    x = np.random.default_rng(3).standard_normal((50, 6))
    graph = quantized(model, x, 6, 7)
    for op in graph.layers:
        q = op.quant
        for k, factor in enumerate(op.chain.factors):
            lo, hi = q.in_formats[k].min_int, q.in_formats[k].max_int
            w = factor.materialize(op.chain.split(q.int_twiddle)[k])
            corners = np.array(list(itertools.product([lo, hi], repeat=factor.q)))
            acc = corners @ w.T
            if k == len(op.chain) - 1:
                acc = acc + q.int_bias
            shift = q.shift(k)
            rounding = (1 << (shift - 1)) if shift > 0 else 0
            assert accumulator_bounds(op, k) == (acc.min(), acc.max() + rounding)
            width = q.acc_widths[k]
            assert -(1 << (width - 1)) <= acc.min() and acc.max() + rounding < (1 << (width - 1))
            assert not (
                -(1 << (width - 2)) <= acc.min() and acc.max() + rounding < (1 << (width - 2))
            )


def test_edge_inputs_saturate_cleanly():
    model = random_network(11, (10, 20, 5))
    x = np.random.default_rng(11).standard_normal((100, 10))
    graph = quantized(model, x, 8, 8)
    fmt = graph.input_format
    edge = np.array([[fmt.max_int] * 10, [fmt.min_int] * 10, [0] * 10])
    run = run_integer(graph, edge)
    out = graph.output_format
    assert run.output.min() >= out.min_int and run.output.max() <= out.max_int
    with pytest.raises(Exception, match=r"input integers must lie in -128\.\.127"):
        run_integer(graph, edge * 2)


@pytest.mark.parametrize("name", ["debut", "debut_small", "dense", "butterfly"])
def test_shipped_models_fixed_within_half_a_point_of_float(name):
    q = quantize_model(EXAMPLES / f"digits_{name}.pt")
    assert q.fixed_accuracy >= q.float_accuracy - 0.005
    assert sum(q.saturations.values()) == 0


def test_manifest_round_trip_runs_the_same_golden_model(tmp_path):
    q = quantize_model(EXAMPLES / "digits_debut.pt")
    write_build(tmp_path, Report(command="quantize"), manifest_of(q.state))
    graph = read_manifest(tmp_path).graph()
    x = quantize_input(q.graph, q.data.test)
    np.testing.assert_array_equal(run_integer(graph, x).output, q.test_run.output)
    path = tmp_path / "manifest.json"
    data = json.loads(path.read_text())
    assert data["input"]["format"] == [8, q.graph.input_format.frac, False]
    assert data["output"]["features"] == 10
    data["layers"][0]["weights"][0] += 1
    path.write_text(json.dumps(data))
    with pytest.raises(
        ArtifactError, match="the manifest's weights do not match its weights_sha256"
    ):
        read_manifest(tmp_path).graph()
    data["version"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=r"schema 1, this compiler reads 2: .* rebuild it"):
        read_manifest(tmp_path)


def test_verifier_names_the_broken_pass():
    model = random_network(5, (8, 12, 4))
    x = np.random.default_rng(5).standard_normal((20, 8))
    steps = quantization_passes(x, 8, 8)

    def broken(graph):
        from dataclasses import replace

        op = graph.ops[0]
        quant: LayerQuant = replace(op.quant, int_twiddle=op.quant.int_twiddle * 1000)
        return replace(graph, ops=(replace(op, quant=quant), *graph.ops[1:]))

    loaded = LoadedModel(model=model, path=Path("m.pt"), architecture=None, input_shape=(8,))
    with pytest.raises(
        IRVerificationError, match=r"pass 'broken' broke the IR: fc0 factor 0: weights outside s8"
    ):
        run_passes(to_graph(loaded), [*steps, ("broken", broken)])


@pytest.mark.parametrize("bits", [1, 17, 8.0])
def test_bit_widths_are_checked(bits):
    with pytest.raises(
        OptionError, match=rf"--act-bits must be an integer in 2\.\.16, not {bits!r}"
    ):
        Options(act_bits=bits).check()


def exact_reference(graph, x_int):
    """The quantised network with dense integer matrices and exact rational rounding: an
    independent statement of docs/fixed-point.md (round half up, saturate, bias at the last
    accumulator, activation before requantisation)."""
    from fractions import Fraction
    from math import floor

    x = [list(map(int, row)) for row in x_int]
    for op in graph.layers:
        q = op.quant
        parts = op.chain.split(q.int_twiddle)
        for k, factor in enumerate(op.chain.factors):
            w = factor.materialize(parts[k]).astype(object)
            out_fmt = q.out_formats[k]
            rows = []
            for sample in x:
                acc = [
                    sum(int(w[i, j]) * sample[j] for j in range(factor.q)) for i in range(factor.p)
                ]
                if k == len(parts) - 1:
                    acc = [a + int(b) for a, b in zip(acc, q.int_bias, strict=True)]
                    if op.activation.value == "relu":
                        acc = [max(a, 0) for a in acc]
                scale = Fraction(2) ** q.shift(k)
                values = [floor(Fraction(a) / scale + Fraction(1, 2)) for a in acc]
                rows.append([min(max(v, out_fmt.min_int), out_fmt.max_int) for v in values])
            x = rows
    return np.array(x, dtype=np.int64)


@pytest.mark.parametrize(("seed", "bits"), [(0, (8, 8)), (1, (5, 9)), (2, (12, 4))])
def test_golden_equals_exact_dense_reference(seed, bits):
    model = random_network(seed, (12, 20, 6))
    x = np.random.default_rng(seed).standard_normal((100, 12))
    graph = quantized(model, x, *bits)
    x_int = quantize_input(graph, 1.5 * x[:25])  # beyond the calibrated range: saturates too
    run = run_integer(graph, x_int)
    assert sum(run.saturations.values()) > 0
    np.testing.assert_array_equal(run.output, exact_reference(graph, x_int))
