"""Front end: a loaded PyTorch model to the IR, one small handler per supported module type.

Supported: ``DeButLinear``, ``nn.Linear`` (the one-factor chain ``[p, q, p, q, 1]``),
``nn.BatchNorm1d``, ``nn.ReLU``, ``nn.ReLU6``, and ``nn.Identity``, ``nn.Dropout`` and
``nn.Flatten`` (no-ops at inference on flat vectors). Models are ``nn.Sequential`` (nested
allowed) or any module that ``torch.fx`` traces into a straight line of such modules. Anything
else raises one error listing every unsupported module with its path and type.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from compiler.frontend.modelfile import LoadedModel
from compiler.ir import Activation, ActivationOp, BatchNormOp, ChainOp, Graph, Op, frozen_array
from compiler.nn.conv import DeButConv1d, DeButConv2d
from compiler.nn.linear import DeButLinear
from debut.chain import Chain
from debut.errors import UnsupportedModelError

__all__ = ["to_graph"]

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, DeButConv1d, DeButConv2d)
_NO_OPS = (nn.Identity, nn.Dropout, nn.Flatten)


class _Unsupported(Exception):
    """Raised by a handler for a module type it does not know."""


def _array(tensor: torch.Tensor | None, size: int) -> np.ndarray:
    if tensor is None:
        return frozen_array(np.zeros(size), np.float64)
    return frozen_array(tensor.detach().double().cpu().numpy().reshape(-1), np.float64)


def _handle(name: str, module: nn.Module, features: int) -> Op | None:
    """The IR node of one module, or None for a no-op. Raises for unsupported modules."""
    if isinstance(module, DeButLinear):
        return ChainOp(
            name, module.chain, _array(module.twiddle, 0), _array(module.bias, module.out_features)
        )
    if isinstance(module, nn.Linear):
        chain = Chain.dense(module.out_features, module.in_features)
        # the one-factor chain's layout is the row-major weight matrix
        return ChainOp(
            name, chain, _array(module.weight, 0), _array(module.bias, module.out_features)
        )
    if isinstance(module, nn.BatchNorm1d):
        if module.running_mean is None or module.running_var is None:
            raise UnsupportedModelError(
                f"{name} (BatchNorm1d) must track running statistics to be folded"
            )
        n = module.num_features
        if not bool((module.running_var + module.eps > 0).all()):
            raise UnsupportedModelError(
                f"{name} (BatchNorm1d) has a negative running variance; retrain or fix the model"
            )
        weight = module.weight if module.affine else None
        bias = module.bias if module.affine else None
        return BatchNormOp(
            name,
            mean=_array(module.running_mean, n),
            var=_array(module.running_var, n),
            weight=_array(weight, n)
            if weight is not None
            else frozen_array(np.ones(n), np.float64),
            bias=_array(bias, n),
            eps=float(module.eps),
        )
    if isinstance(module, nn.ReLU6):
        return ActivationOp(name, Activation.RELU6, features)
    if isinstance(module, nn.ReLU):
        return ActivationOp(name, Activation.RELU, features)
    if isinstance(module, _NO_OPS):
        return None
    raise _Unsupported(name)


def _unsupported(name: str, module: nn.Module) -> str:
    hint = (
        " (convolutions are not lowered to hardware yet)"
        if isinstance(module, _CONVOLUTIONS)
        else ""
    )
    return f"{name or '<model>'} ({type(module).__name__}){hint}"


class _LeafTracer(torch.fx.Tracer):
    """Traces a custom module, keeping the project's own layers whole."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, (DeButLinear, *_CONVOLUTIONS)) or super().is_leaf_module(
            m, module_qualified_name
        )


def _modules_in_order(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf modules in execution order."""
    if isinstance(model, nn.Sequential):
        out = []
        for name, child in model.named_children():
            sub = _modules_in_order(child)
            out.extend((f"{name}.{n}" if n else name, m) for n, m in sub)
        return out
    if not list(model.children()) or isinstance(model, (DeButLinear, *_CONVOLUTIONS)):
        return [("", model)]
    try:
        graph = _LeafTracer().trace(model)
    except Exception as exc:  # tracing user code can fail in many ways
        raise UnsupportedModelError(
            f"cannot trace {type(model).__name__} with torch.fx ({exc}); use an nn.Sequential"
        ) from None
    out, odd = [], []
    for node in graph.nodes:
        if node.op == "call_module":
            out.append((str(node.target), model.get_submodule(node.target)))
        elif node.op == "call_function" and node.target in (torch.relu, torch.nn.functional.relu):
            out.append((node.name, nn.ReLU()))
        elif node.op == "call_function" and node.target is torch.flatten:
            out.append((node.name, nn.Flatten()))
        elif node.op not in ("placeholder", "output"):
            odd.append(f"{node.name} ({node.op} {node.target})")
    if odd:
        raise UnsupportedModelError(
            f"{type(model).__name__} computes more than a straight line of layers: "
            f"{', '.join(odd)}; supported is a sequence of linear, batch-norm and ReLU layers"
        )
    return out


def to_graph(loaded: LoadedModel) -> Graph:
    """The IR of a loaded model (not yet folded or quantised)."""
    if len(loaded.input_shape) != 1:
        raise UnsupportedModelError(
            f"input shape must be a flat feature vector, not {loaded.input_shape} "
            "(convolutional models are not lowered to hardware yet)"
        )
    features = loaded.input_shape[0]
    ops: list[Op] = []
    unsupported: list[str] = []
    for name, module in _modules_in_order(loaded.model):
        try:
            op = _handle(name, module, features)
        except _Unsupported:
            unsupported.append(_unsupported(name, module))
            continue
        if op is None:
            continue
        if op.in_features != features and not unsupported:
            raise UnsupportedModelError(
                f"{name} ({type(module).__name__}) takes {op.in_features} features but receives "
                f"{features}"
            )
        features = op.out_features
        ops.append(op)
    if unsupported:
        raise UnsupportedModelError(
            "the model has modules the compiler does not support: " + "; ".join(unsupported)
        )
    if not any(isinstance(op, ChainOp) for op in ops):
        raise UnsupportedModelError("the model has no linear layer to compile")
    return Graph(
        in_features=loaded.input_shape[0], preprocessing=loaded.preprocessing, ops=tuple(ops)
    )
