"""DeBut convolutions: a DeBut chain applied to unfolded patches.

The filter matrix has one row per output channel and one column per patch element, channel
fastest: column ``(kh_i * kw + kw_j) * C_in + c``. A dense convolution weight ``w`` maps to it by
``w.permute(0, 2, 3, 1).reshape(C_out, kh * kw * C_in)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from compiler.nn.linear import apply_chain, chain_matrix, default_twiddle
from debut.chain import Chain
from debut.errors import ChainError

__all__ = ["DeButConv1d", "DeButConv2d", "conv_filter_matrix"]


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ChainError(f"{name} must be an int or a pair of ints, not {value!r}")
    return pair  # type: ignore[return-value]


def conv_filter_matrix(weight: torch.Tensor) -> torch.Tensor:
    """The ``C_out x (kh*kw*C_in)`` filter matrix (channel fastest) of a dense conv weight."""
    c_out = weight.shape[0]
    return weight.permute(0, 2, 3, 1).reshape(c_out, -1)


class DeButConv2d(nn.Module):
    """2-d convolution whose filter matrix is a DeBut chain (``groups=1``).

    The chain maps ``kh*kw*C_in`` patch elements (channel fastest) to ``C_out`` channels.
    Parameters ``twiddle`` and ``bias``, as :class:`~compiler.nn.DeButLinear`.
    Input ``(B, C_in, H, W)``, output ``(B, C_out, H_out, W_out)`` as ``nn.Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        chain: Chain | Sequence[Sequence[int]],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        kh, kw = self.kernel_size
        self.chain = Chain.from_list(chain, kh * kw * in_channels, out_channels)
        self.twiddle = nn.Parameter(default_twiddle(self.chain))
        if bias:
            bound = 1.0 / math.sqrt(kh * kw * in_channels)
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

    def _out_size(self, size: int, axis: int) -> int:
        k, s, p, d = (v[axis] for v in (self.kernel_size, self.stride, self.padding, self.dilation))
        return (size + 2 * p - d * (k - 1) - 1) // s + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ChainError(
                f"input must have shape (B, {self.in_channels}, H, W), not {tuple(x.shape)}"
            )
        batch, _, height, width = x.shape
        h_out, w_out = self._out_size(height, 0), self._out_size(width, 1)
        if self.kernel_size == (1, 1):
            ph, pw = self.padding
            if ph or pw:
                x = F.pad(x, (pw, pw, ph, ph))
            patches = x[:, :, :: self.stride[0], :: self.stride[1]].permute(0, 2, 3, 1)
        else:
            cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
            # F.unfold puts the channel slowest, (C_in, kh*kw); the chain wants it fastest
            kk = self.kernel_size[0] * self.kernel_size[1]
            patches = cols.view(batch, self.in_channels, kk, -1).permute(0, 3, 2, 1)
            patches = patches.reshape(batch, h_out, w_out, kk * self.in_channels)
        y = apply_chain(self.chain, self.twiddle, patches)
        if self.bias is not None:
            y = y + self.bias
        return y.permute(0, 3, 1, 2)

    def weight_matrix(self) -> torch.Tensor:
        """The materialised filter matrix ``C_out x (kh*kw*C_in)``, channel fastest."""
        return chain_matrix(self.chain, self.twiddle)

    def conv_weight(self) -> torch.Tensor:
        """The equivalent dense ``nn.Conv2d`` weight ``(C_out, C_in, kh, kw)``."""
        kh, kw = self.kernel_size
        w = self.weight_matrix().reshape(self.out_channels, kh, kw, self.in_channels)
        return w.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"bias={self.bias is not None}, chain={self.chain}"
        )


class DeButConv1d(nn.Module):
    """Point-wise (kernel 1) 1-d convolution with a DeBut filter matrix, PointNet style.

    Input ``(B, C_in, L)``, output ``(B, C_out, L)``; a shared DeBut linear map per position.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        chain: Chain | Sequence[Sequence[int]],
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.chain = Chain.from_list(chain, in_channels, out_channels)
        self.twiddle = nn.Parameter(default_twiddle(self.chain))
        if bias:
            bound = 1.0 / math.sqrt(in_channels)
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ChainError(
                f"input must have shape (B, {self.in_channels}, L), not {tuple(x.shape)}"
            )
        y = apply_chain(self.chain, self.twiddle, x.transpose(1, 2))
        if self.bias is not None:
            y = y + self.bias
        return y.transpose(1, 2)

    def weight_matrix(self) -> torch.Tensor:
        return chain_matrix(self.chain, self.twiddle)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, bias={self.bias is not None}, "
            f"chain={self.chain}"
        )
