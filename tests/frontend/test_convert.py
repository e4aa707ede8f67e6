from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compiler.frontend.convert import to_graph
from compiler.frontend.modelfile import LoadedModel, load_model
from compiler.golden import run_float
from compiler.ir import Activation, ActivationOp, BatchNormOp, ChainOp
from compiler.nn.conv import DeButConv2d
from compiler.nn.linear import DeButLinear
from compiler.passes.fold_batchnorm import fold_batchnorm
from compiler.passes.fuse_activations import fuse_activations
from debut.errors import UnsupportedModelError

CHAIN = [[32, 16, 4, 2, 1], [32, 32, 8, 8, 4]]


def loaded(model: nn.Module, shape=(16,)) -> LoadedModel:
    return LoadedModel(
        model=model.eval().double(), path=Path("m.pt"), architecture=None, input_shape=shape
    )


def with_trained_bn(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(64, 16) * 3 + 1)
    return model.eval()


def bn_model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(
            fc1=DeButLinear(16, 32, CHAIN),
            bn1=nn.BatchNorm1d(32),
            relu1=nn.ReLU(),
            drop=nn.Dropout(0.5),
            block=nn.Sequential(nn.Linear(32, 8), nn.ReLU6()),
            flat=nn.Flatten(),
            out=nn.Linear(8, 3),
        )
    )
    with torch.no_grad():
        model.bn1.weight.uniform_(0.5, 2.0)
        model.bn1.bias.uniform_(-1, 1)
    return with_trained_bn(model)


def test_front_end_ops_and_dense_layout():
    model = bn_model()
    graph = to_graph(loaded(model))
    kinds = [type(op) for op in graph.ops]
    assert kinds == [ChainOp, BatchNormOp, ActivationOp, ChainOp, ActivationOp, ChainOp]
    dense = graph.ops[3]
    assert dense.chain.as_list() == [[8, 32, 8, 32, 1]]
    np.testing.assert_array_equal(
        dense.chain.materialize(dense.twiddle), model.block[0].weight.detach().numpy()
    )


def test_batchnorm_folding_is_exact_in_float():
    model = bn_model()
    graph = fuse_activations(fold_batchnorm(to_graph(loaded(model))))
    assert [type(op) for op in graph.ops] == [ChainOp, ChainOp, ChainOp]
    assert [op.activation for op in graph.ops] == [
        Activation.RELU,
        Activation.RELU6,
        Activation.NONE,
    ]
    x = np.random.default_rng(0).standard_normal((50, 16)) * 2
    y, _ = run_float(graph, x)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


def test_batchnorm_not_after_linear_is_an_error():
    model = with_trained_bn(nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.BatchNorm1d(8)))
    with pytest.raises(
        UnsupportedModelError,
        match=r"^2 \(BatchNorm1d\) must directly follow a linear layer to be folded into it, "
        r"but follows 0$",
    ):
        fold_batchnorm(fuse_activations(to_graph(loaded(model))))


def test_every_unsupported_module_is_listed():
    model = nn.Sequential(
        OrderedDict(
            fc=nn.Linear(16, 16),
            act=nn.Tanh(),
            inner=nn.Sequential(nn.Linear(16, 16), nn.GELU()),
            conv=DeButConv2d(1, 4, 2, [[4, 4, 4, 4, 1]]),
        )
    )
    with pytest.raises(UnsupportedModelError) as info:
        to_graph(loaded(model))
    assert str(info.value) == (
        "the model has modules the compiler does not support: act (Tanh); inner.1 (GELU); "
        "conv (DeButConv2d) (convolutions are not lowered to hardware yet)"
    )


def test_convolutional_input_is_a_clear_error():
    with pytest.raises(
        UnsupportedModelError, match=r"input shape must be a flat feature vector, not \(1, 8, 8\)"
    ):
        to_graph(loaded(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), shape=(1, 8, 8)))


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = DeButLinear(16, 32, CHAIN)
        self.b = nn.Linear(32, 4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class Branchy(Custom):
    def forward(self, x):
        h = self.a(x)
        return self.b(h + h)


def test_traced_custom_module(tmp_path):
    torch.manual_seed(0)
    model = Custom()
    torch.save(model, tmp_path / "c.pt")
    graph = fuse_activations(to_graph(load_model(tmp_path / "c.pt", trust_pickle=True)))
    assert [op.name for op in graph.ops] == ["a", "b"]
    x = np.random.default_rng(1).standard_normal((4, 16))
    with torch.no_grad():
        expected = model(torch.from_numpy(x).float()).double().numpy()
    np.testing.assert_allclose(run_float(graph, x)[0], expected, atol=1e-5)
    with pytest.raises(
        UnsupportedModelError, match="computes more than a straight line of layers: add"
    ):
        to_graph(loaded(Branchy()))
