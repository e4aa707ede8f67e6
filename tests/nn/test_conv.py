import pytest
import torch
import torch.nn.functional as F

from compiler.nn.conv import DeButConv1d, DeButConv2d, conv_filter_matrix
from debut.errors import ChainError


def dense_chain(out_features, in_features):
    return [[out_features, in_features, out_features, in_features, 1]]


@pytest.mark.parametrize(
    ("c_in", "c_out", "kernel", "stride", "padding", "dilation", "chain"),
    [
        (3, 8, 3, 1, 1, 1, [[24, 27, 8, 9, 1], [8, 24, 1, 3, 8]]),
        (4, 6, (3, 2), (2, 1), (1, 0), 1, [[24, 24, 6, 6, 1], [6, 24, 1, 4, 6]]),
        (2, 4, 3, 1, 2, 2, [[12, 18, 2, 3, 1], [4, 12, 2, 6, 2]]),
        (8, 16, 1, 1, 0, 1, [[16, 8, 4, 2, 1], [16, 16, 4, 4, 4]]),
        (8, 16, 1, 2, 1, 1, [[16, 8, 4, 2, 1], [16, 16, 4, 4, 4]]),
        (5, 7, 2, 1, 0, 1, dense_chain(7, 20)),
    ],
)
def test_conv2d_equals_conv_with_materialised_filter(
    c_in, c_out, kernel, stride, padding, dilation, chain
):
    torch.manual_seed(0)
    layer = DeButConv2d(c_in, c_out, kernel, chain, stride, padding, dilation).double()
    x = torch.randn(2, c_in, 9, 8, dtype=torch.float64)
    expected = F.conv2d(x, layer.conv_weight(), layer.bias, stride, padding, dilation)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-10)


def test_filter_matrix_is_channel_fastest():
    weight = torch.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    matrix = conv_filter_matrix(weight)
    # column (kh*kw_size + kw)*C_in + c
    for o in range(2):
        for c in range(3):
            for i in range(2):
                for j in range(2):
                    assert matrix[o, (i * 2 + j) * 3 + c] == weight[o, c, i, j]


def test_conv1d_pointwise_equals_conv1d():
    layer = DeButConv1d(8, 16, [[16, 8, 4, 2, 1], [16, 16, 4, 4, 4]]).double()
    x = torch.randn(3, 8, 11, dtype=torch.float64)
    expected = F.conv1d(x, layer.weight_matrix()[:, :, None], layer.bias)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-10)


def test_conv_gradients_reach_twiddle():
    layer = DeButConv2d(3, 8, 3, [[24, 27, 8, 9, 1], [8, 24, 1, 3, 8]], padding=1)
    layer(torch.randn(2, 3, 6, 6)).sum().backward()
    assert layer.twiddle.grad.abs().sum() > 0


def test_conv_bad_inputs():
    with pytest.raises(ChainError, match="q=27 must equal in_features=18"):
        DeButConv2d(2, 8, 3, [[24, 27, 8, 9, 1], [8, 24, 1, 3, 8]])
    layer = DeButConv2d(3, 8, 3, [[24, 27, 8, 9, 1], [8, 24, 1, 3, 8]])
    with pytest.raises(
        ChainError, match=r"input must have shape \(B, 3, H, W\), not \(2, 4, 5, 5\)"
    ):
        layer(torch.randn(2, 4, 5, 5))
    with pytest.raises(ChainError, match="kernel_size must be an int or a pair of ints, not"):
        DeButConv2d(3, 8, (3, 3, 3), [[8, 81, 8, 81, 1]])
