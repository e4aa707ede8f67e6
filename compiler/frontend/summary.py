"""Per-layer parameter and MAC counts of a model (the report's ``model`` section), and the
float model's outputs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from compiler.artifacts import LayerSummary, ModelSection
from compiler.frontend.modelfile import LoadedModel
from compiler.nn.conv import DeButConv1d, DeButConv2d
from compiler.nn.linear import DeButLinear
from debut.chain import Chain

__all__ = ["predict", "summarize"]


def _weight_chain(module: nn.Module) -> tuple[str, Chain] | None:
    if isinstance(module, (DeButLinear, DeButConv1d, DeButConv2d)):
        return type(module).__name__, module.chain
    if isinstance(module, nn.Linear):
        return "Linear", Chain.dense(module.out_features, module.in_features)
    if isinstance(module, nn.Conv2d) and module.groups == 1:
        fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        return "Conv2d", Chain.dense(module.out_channels, fan_in)
    return None


def summarize(model: nn.Module, input_shape: tuple[int, ...]) -> ModelSection:
    """Count parameters and MACs of every weight layer, with a forward pass on one zero sample
    to learn how many output positions each convolution has."""
    positions: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if _weight_chain(module) is not None:

            def record(mod, inputs, output, name=name):
                out = output[0]
                positions[name] = int(out[0].numel()) if out.dim() > 1 else 1

            hooks.append(module.register_forward_hook(record))
    try:
        dtype = next(model.parameters(), torch.zeros(())).dtype
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, dtype=dtype))
    finally:
        for hook in hooks:
            hook.remove()

    layers = []
    for name, module in model.named_modules():
        found = _weight_chain(module)
        if found is None:
            continue
        kind, chain = found
        bias = getattr(module, "bias", None)
        n_bias = 0 if bias is None else bias.numel()
        layers.append(
            LayerSummary(
                name=name,
                kind=kind,
                in_features=chain.in_features,
                out_features=chain.out_features,
                chain=chain,
                params=chain.params + n_bias,
                macs=chain.macs * positions.get(name, 1),
                dense_params=chain.dense_params + n_bias,
            )
        )
    total = sum(p.numel() for p in model.parameters())
    weight_params = sum(layer.params for layer in layers)
    return ModelSection(
        layers=tuple(layers),
        params=total,
        macs=sum(layer.macs for layer in layers),
        dense_params=total - weight_params + sum(layer.dense_params for layer in layers),
    )


def predict(loaded: LoadedModel, raw: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Float model outputs for raw features (the model's preprocessing applied first)."""
    dtype = next(loaded.model.parameters(), torch.zeros(())).dtype
    outs = []
    with torch.no_grad():
        for start in range(0, len(raw), batch):
            x = torch.as_tensor(loaded.preprocessing.apply(raw[start : start + batch]), dtype=dtype)
            outs.append(loaded.model(x).numpy())
    return np.concatenate(outs)
