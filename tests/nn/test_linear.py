import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.nn.linear import DeButLinear
from debut.chain import Chain
from debut.errors import ChainError


@st.composite
def valid_chains(draw):
    """Random valid chains, not only rule-conforming ones: each factor picks r, s, t and a block
    count that fit the previous width."""
    width = draw(st.integers(1, 4)) * draw(st.sampled_from([1, 2, 3, 4]))
    factors = []
    for _ in range(draw(st.integers(1, 4))):
        options = [
            (s, t) for s in range(1, width + 1) for t in range(1, width + 1) if width % (s * t) == 0
        ]
        s, t = draw(st.sampled_from(options))
        nb = width // (s * t)
        r = draw(st.integers(1, 3))
        factors.append([nb * r * t, width, r, s, t])
        width = nb * r * t
    return Chain.from_list(factors)


@settings(max_examples=60, deadline=None)
@given(chain=valid_chains(), lead=st.sampled_from([(3,), (2, 3), ()]))
def test_forward_equals_dense_materialisation(chain, lead):
    layer = DeButLinear(chain.in_features, chain.out_features, chain).double()
    x = torch.randn(*lead, chain.in_features, dtype=torch.float64)
    w = torch.from_numpy(chain.materialize(layer.twiddle.detach().numpy()))
    expected = x @ w.T + layer.bias
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-10)


def test_reference_state_dict_loads_unchanged():
    chain = [[256, 400, 16, 25, 1], [256, 256, 2, 2, 16], [128, 256, 1, 2, 32]]
    layer = DeButLinear(400, 128, chain)
    assert set(layer.state_dict()) == {"twiddle", "bias"}
    assert layer.twiddle.shape == (Chain.from_list(chain).params,)
    state = {"twiddle": torch.randn(layer.twiddle.shape), "bias": torch.randn(128)}
    layer.load_state_dict(state)
    torch.testing.assert_close(layer.twiddle.detach(), state["twiddle"])


def test_gradients_reach_twiddle_and_bias():
    layer = DeButLinear(64, 128, [[128, 64, 8, 4, 1], [128, 128, 16, 16, 8]])
    layer(torch.randn(5, 64)).square().sum().backward()
    assert layer.twiddle.grad is not None and layer.twiddle.grad.abs().sum() > 0
    assert layer.bias.grad is not None and layer.bias.grad.abs().sum() > 0


def test_default_init_matches_linear_output_variance():
    torch.manual_seed(0)
    chain = [[128, 128, 2, 2, 2**k] for k in range(7)]
    x = torch.randn(1024, 128)
    ratios = []
    for _ in range(20):
        layer = DeButLinear(128, 128, chain, bias=False)
        with torch.no_grad():
            ratios.append(float(layer(x).var() / x.var()))
    # nn.Linear's default keeps 1/3 of the input variance; an unscaled randn per factor would
    # multiply it by prod(s) = 128
    assert 0.2 < np.median(ratios) < 0.5


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ChainError, match="q=64 must equal in_features=32"):
        DeButLinear(32, 128, [[128, 64, 2, 1, 1]])
    layer = DeButLinear(64, 128, [[128, 64, 2, 1, 1]])
    with pytest.raises(ChainError, match=r"input's last dimension must be in_features=64, not 63"):
        layer(torch.randn(2, 63))
