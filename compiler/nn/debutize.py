"""debutize: replace dense layers of a trained model with DeBut layers fitted by ALS."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from compiler.nn.als import als_fit, svd_error
from compiler.nn.conv import DeButConv2d, conv_filter_matrix
from compiler.nn.generate import suggest_chain
from compiler.nn.linear import DeButLinear
from debut.chain import Chain
from debut.errors import UnsupportedModelError

__all__ = ["DebutizeReport", "debutize"]

ChainSpec = Chain | Sequence[Sequence[int]] | float


@dataclass(frozen=True)
class DebutizeReport:
    """What replacing one layer cost: parameters and the fit's relative Frobenius error, beside
    a truncated SVD with the same parameter count."""

    name: str
    chain: Chain
    dense_params: int
    params: int
    rel_error: float
    svd_rank: int
    svd_rel_error: float

    def line(self) -> str:
        return (
            f"{self.name}: {self.dense_params:,} -> {self.params:,} weights "
            f"({1 - self.params / self.dense_params:.1%} fewer), ALS error {self.rel_error:.4f}, "
            f"rank-{self.svd_rank} SVD error {self.svd_rel_error:.4f}"
        )


def _resolve_chain(spec: ChainSpec, out_features: int, in_features: int) -> Chain:
    if isinstance(spec, float):
        return suggest_chain(out_features, in_features, compression=spec)
    return Chain.from_list(spec, in_features, out_features)


def _replacement(
    module: nn.Module, chain_spec: ChainSpec, name: str
) -> tuple[nn.Module, np.ndarray]:
    if isinstance(module, nn.Linear):
        chain = _resolve_chain(chain_spec, module.out_features, module.in_features)
        layer = DeButLinear(module.in_features, module.out_features, chain, module.bias is not None)
        return layer, module.weight.detach().double().numpy()
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or not isinstance(module.padding, tuple):
            raise UnsupportedModelError(
                f"layer {name!r}: only nn.Conv2d with groups=1 and numeric padding can be "
                f"debutized, not groups={module.groups}, padding={module.padding!r}"
            )
        kh, kw = module.kernel_size
        chain = _resolve_chain(chain_spec, module.out_channels, kh * kw * module.in_channels)
        layer = DeButConv2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            chain,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            bias=module.bias is not None,
        )
        return layer, conv_filter_matrix(module.weight.detach().double()).numpy()
    raise UnsupportedModelError(
        f"layer {name!r} must be nn.Linear or nn.Conv2d to be debutized, "
        f"not {type(module).__name__}"
    )


def debutize(
    model: nn.Module,
    chains: Mapping[str, ChainSpec],
    *,
    sweeps: int = 5,
    restarts: int = 1,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[nn.Module, list[DebutizeReport]]:
    """Return a copy of ``model`` with the named layers replaced by ALS-initialised DeBut layers.

    ``chains`` maps a module path (as in ``model.named_modules()``) to its chain, given as a
    :class:`Chain`, a list of ``[p, q, r, s, t]``, or a float compression ratio (the fraction of
    weights to remove) for which :func:`suggest_chain` picks a monotonic chain. Biases are copied.
    The input model is left unchanged.
    """
    modules = dict(model.named_modules())
    missing = [name for name in chains if name not in modules or name == ""]
    if missing:
        raise UnsupportedModelError(
            f"layers {missing} are not in the model; its layers are {[n for n in modules if n]}"
        )
    new_model = copy.deepcopy(model)
    new_modules = dict(new_model.named_modules())
    reports = []
    for index, (name, spec) in enumerate(chains.items()):
        old = new_modules[name]
        layer, weight = _replacement(old, spec, name)
        result = als_fit(weight, layer.chain, sweeps=sweeps, restarts=restarts, seed=seed + index)
        with torch.no_grad():
            layer.twiddle.copy_(torch.from_numpy(result.twiddle))
            if layer.bias is not None:
                layer.bias.copy_(old.bias.detach())
        layer.to(dtype=old.weight.dtype)
        parent_name, _, attr = name.rpartition(".")
        setattr(new_modules[parent_name] if parent_name else new_model, attr, layer)
        rank, svd_err = svd_error(weight, layer.chain.params)
        report = DebutizeReport(
            name=name,
            chain=layer.chain,
            dense_params=weight.size,
            params=layer.chain.params,
            rel_error=result.rel_error,
            svd_rank=rank,
            svd_rel_error=svd_err,
        )
        reports.append(report)
        if progress is not None:
            progress(report.line())
    return new_model, reports
