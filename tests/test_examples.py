"""The shipped example models meet the targets they are documented with."""

from pathlib import Path

import pytest
import torch

from compiler.datasets import load_split
from compiler.folding import fold
from compiler.frontend.modelfile import load_model
from compiler.frontend.summary import predict
from compiler.nn.linear import DeButLinear

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def evaluate(name: str):
    loaded = load_model(EXAMPLES / f"digits_{name}.pt")
    split = load_split(loaded.dataset)
    params = sum(p.numel() for p in loaded.model.parameters())
    accuracy = float((predict(loaded, split.x_test).argmax(axis=1) == split.y_test).mean())
    return loaded, params, accuracy


@pytest.mark.parametrize("name", ["dense", "debut", "debut_small", "butterfly"])
def test_example_is_safe_format_on_digits(name):
    raw = torch.load(EXAMPLES / f"digits_{name}.pt", weights_only=True)
    assert raw["dataset"] == {
        "name": "sklearn-digits",
        "test_size": 0.25,
        "random_state": 0,
        "stratify": True,
    }
    assert raw["preprocessing"] == {"scale": 1 / 16, "offset": 0.0}
    widths = [
        (layer.get("in_features"), layer.get("out_features"))
        for layer in raw["architecture"]["layers"]
        if "in_features" in layer
    ]
    assert widths == [(64, 128), (128, 128), (128, 10)]


def test_debut_model_quarter_of_dense_params_within_one_point():
    _, dense_params, dense_acc = evaluate("dense")
    debut, debut_params, debut_acc = evaluate("debut")
    assert dense_params == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
    assert debut_params <= dense_params / 4
    assert debut_acc >= dense_acc - 0.01
    assert dense_acc > 0.95
    for name in ("fc1", "fc2"):
        layer = getattr(debut.model, name)
        assert isinstance(layer, DeButLinear) and len(layer.chain) > 1
        assert layer.chain.is_dense()


def test_small_debut_model_has_eight_equal_stages_within_one_point():
    """DeBut in all three layers, at most 1/12 of the dense MACs; every factor but the last has
    256 MACs (the last 160), so 8 multipliers, one per stage, issue a vector every 256 cycles."""
    dense, _, dense_acc = evaluate("dense")
    small, _, small_acc = evaluate("debut_small")
    assert small_acc >= dense_acc - 0.01
    dense_macs = sum(
        m.in_features * m.out_features for m in dense.model.modules() if hasattr(m, "in_features")
    )
    stage_macs = []
    for name in ("fc1", "fc2", "fc3"):
        layer = getattr(small.model, name)
        assert isinstance(layer, DeButLinear) and layer.chain.is_dense()
        assert min(layer.chain.widths[1:-1]) >= 32  # the intermediate widths
        stage_macs += [f.p * f.s for f in layer.chain.factors]
    assert stage_macs == [256] * 7 + [160]
    assert sum(stage_macs) * 12 <= dense_macs
    folding = fold(stage_macs, budget=8)
    assert (folding.ii, folding.multipliers) == (256, (1,) * 8)


def test_butterfly_model_uses_two_by_two_factors():
    bfly, _, acc = evaluate("butterfly")
    for name in ("fc1", "fc2"):
        chain = getattr(bfly.model, name).chain
        assert chain.is_dense()
        assert sum((f.r, f.s) == (2, 2) for f in chain.factors) == 6 + (name == "fc2")
    assert acc > 0.9


def test_tiny_pair_debut_within_one_test_sample_at_a_third_of_the_macs():
    """The tiny-board pair (examples/train_tiny.py): the DeBut twin has under a third of the
    dense model's MACs and its 8-bit test accuracy is within one test sample of the dense
    model's 8-bit accuracy (computed here by the golden model on the test split)."""
    from tests.helpers import quantize_model

    dense = quantize_model(EXAMPLES / "digits_tiny_dense.pt")
    debut = quantize_model(EXAMPLES / "digits_tiny_debut.pt")
    macs = {
        name: sum(f.params for op in q.graph.layers for f in op.chain.factors)
        for name, q in (("dense", dense), ("debut", debut))
    }
    assert macs["dense"] == 64 * 64 + 64 * 64 + 64 * 10
    assert macs["debut"] * 3 <= macs["dense"]
    samples = len(dense.data.test)
    assert samples == 450
    assert debut.fixed_accuracy >= dense.fixed_accuracy - 1 / samples
    assert dense.fixed_accuracy > 0.95
