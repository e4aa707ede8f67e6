"""DeButLinear: a linear layer whose weight is a DeBut factor chain."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from debut.chain import Chain
from debut.errors import ChainError

__all__ = ["DeButLinear", "apply_chain", "chain_matrix"]


def apply_chain(chain: Chain, twiddle: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x @ W.T`` for the chain's matrix ``W`` without materialising it.

    ``x`` has shape ``(..., in_features)``; the result ``(..., out_features)``.
    """
    lead = x.shape[:-1]
    y = x.reshape(-1, chain.in_features)
    batch = y.shape[0]
    off = chain.offsets
    for k, f in enumerate(chain.factors):
        theta = twiddle[off[k] : off[k + 1]].view(f.nb, f.t, f.r, f.s)
        # group (b, d) gathers x[b*s*t + c*t + d] and produces y[b*r*t + a*t + d]
        y = torch.einsum("ndac,bncd->bnad", theta, y.reshape(batch, f.nb, f.s, f.t))
        y = y.reshape(batch, f.p)
    return y.reshape(*lead, chain.out_features)


def chain_matrix(chain: Chain, twiddle: torch.Tensor) -> torch.Tensor:
    """The dense ``out x in`` matrix (differentiable), for checks and export."""
    eye = torch.eye(chain.in_features, dtype=twiddle.dtype, device=twiddle.device)
    return apply_chain(chain, twiddle, eye).T


def default_twiddle(chain: Chain, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random factors whose product has ``nn.Linear``'s default output variance.

    ``nn.Linear`` draws ``U(-1/sqrt(in), 1/sqrt(in))``: variance ``1/(3 in)`` per weight, so an
    output has ``1/3`` of the input's variance. Factor k multiplies the variance by
    ``s_k * sigma_k^2``; each factor takes an equal geometric share of the target.
    """
    share = (1.0 / 3.0) ** (1.0 / len(chain))
    parts = []
    for f in chain.factors:
        sigma = math.sqrt(share / f.s)
        parts.append(torch.randn(f.params, generator=generator, dtype=torch.float64) * sigma)
    return torch.cat(parts).to(torch.get_default_dtype())


class DeButLinear(nn.Module):
    """``y = x W^T + b`` with ``W`` a DeBut chain ``B_N ... B_1``.

    Parameters are exactly ``twiddle`` (flat, the reference layout) and ``bias``, so a state dict
    trained with the reference DeBut code loads unchanged. Input is batch-first with any leading
    dimensions: ``(..., in_features) -> (..., out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        chain: Chain | Sequence[Sequence[int]],
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.chain = Chain.from_list(chain, in_features, out_features)
        self.in_features = in_features
        self.out_features = out_features
        self.twiddle = nn.Parameter(default_twiddle(self.chain))
        if bias:
            bound = 1.0 / math.sqrt(in_features)
            self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ChainError(
                f"input's last dimension must be in_features={self.in_features}, "
                f"not {x.shape[-1]} (input shape {tuple(x.shape)})"
            )
        y = apply_chain(self.chain, self.twiddle, x)
        if self.bias is not None:
            y = y + self.bias
        return y

    def weight_matrix(self) -> torch.Tensor:
        """The materialised dense weight ``W`` (out x in)."""
        return chain_matrix(self.chain, self.twiddle)

    def factor_matrices(self) -> list[np.ndarray]:
        """Each factor as a dense numpy matrix (application order)."""
        return self.chain.factor_matrices(self.twiddle.detach().cpu().numpy())

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, chain={self.chain}"
        )
