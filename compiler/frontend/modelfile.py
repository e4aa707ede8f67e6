"""The safe model file: a versioned architecture description (data, not code) plus a state dict.

A file written by :func:`save_model` loads with ``torch.load(path, weights_only=True)``; its
layout is documented in ``docs/model-format.md``. A pickled whole ``nn.Module`` is read only when
the caller passes ``trust_pickle=True``, since unpickling runs code.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compiler.datasets import DatasetRef
from compiler.nn.conv import DeButConv1d, DeButConv2d
from compiler.nn.linear import DeButLinear
from debut.errors import CompilerError, ModelFormatError, UnsupportedModelError
from debut.preprocessing import Preprocessing

__all__ = [
    "FORMAT",
    "VERSION",
    "LoadedModel",
    "Preprocessing",
    "architecture_of",
    "build_model",
    "load_model",
    "save_model",
]

FORMAT = "debut-fpga-model"
VERSION = 1


# One encoder/decoder pair per supported module type: the architecture is data, never code.
def _pair(v) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


_ENCODERS: dict[type, Callable[[nn.Module], dict[str, Any]]] = {
    DeButLinear: lambda m: {
        "in_features": m.in_features,
        "out_features": m.out_features,
        "chain": m.chain.as_list(),
        "bias": m.bias is not None,
    },
    nn.Linear: lambda m: {
        "in_features": m.in_features,
        "out_features": m.out_features,
        "bias": m.bias is not None,
    },
    DeButConv2d: lambda m: {
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "kernel_size": list(m.kernel_size),
        "chain": m.chain.as_list(),
        "stride": list(m.stride),
        "padding": list(m.padding),
        "dilation": list(m.dilation),
        "bias": m.bias is not None,
    },
    DeButConv1d: lambda m: {
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "chain": m.chain.as_list(),
        "bias": m.bias is not None,
    },
    nn.Conv2d: lambda m: {
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "kernel_size": _pair(m.kernel_size),
        "stride": _pair(m.stride),
        "padding": _pair(m.padding),
        "dilation": _pair(m.dilation),
        "groups": m.groups,
        "bias": m.bias is not None,
    },
    nn.BatchNorm1d: lambda m: {"num_features": m.num_features, "eps": m.eps},
    nn.BatchNorm2d: lambda m: {"num_features": m.num_features, "eps": m.eps},
    nn.ReLU: lambda m: {},
    nn.ReLU6: lambda m: {},
    nn.Identity: lambda m: {},
    nn.Flatten: lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    nn.Dropout: lambda m: {"p": m.p},
    nn.MaxPool2d: lambda m: {"kernel_size": m.kernel_size, "stride": m.stride},
}

_DECODERS: dict[str, Callable[..., nn.Module]] = {
    "DeButLinear": DeButLinear,
    "Linear": nn.Linear,
    "DeButConv2d": DeButConv2d,
    "DeButConv1d": DeButConv1d,
    "Conv2d": nn.Conv2d,
    "BatchNorm1d": nn.BatchNorm1d,
    "BatchNorm2d": nn.BatchNorm2d,
    "ReLU": nn.ReLU,
    "ReLU6": nn.ReLU6,
    "Identity": nn.Identity,
    "Flatten": nn.Flatten,
    "Dropout": nn.Dropout,
    "MaxPool2d": nn.MaxPool2d,
}


def architecture_of(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Describe an ``nn.Sequential`` of supported modules as plain data."""
    if not isinstance(model, nn.Sequential):
        raise UnsupportedModelError(
            f"model must be an nn.Sequential of supported layers, not {type(model).__name__}"
        )
    layers, unsupported = [], []
    for name, module in model.named_children():
        encode = _ENCODERS.get(type(module))
        if encode is None:
            unsupported.append(f"{name} ({type(module).__name__})")
            continue
        layers.append({"name": name, "type": type(module).__name__, **encode(module)})
    if unsupported:
        raise UnsupportedModelError(
            f"cannot describe these modules: {', '.join(unsupported)}; supported types are "
            f"{', '.join(sorted(_DECODERS))}"
        )
    return {"input_shape": list(input_shape), "layers": layers}


def build_model(architecture: dict[str, Any]) -> nn.Sequential:
    """Instantiate the ``nn.Sequential`` that an architecture description names."""
    layers = architecture.get("layers") if isinstance(architecture, dict) else None
    if not isinstance(layers, list) or not layers:
        raise ModelFormatError("architecture must hold a non-empty list 'layers'")
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for index, spec in enumerate(layers):
        if not isinstance(spec, dict) or "type" not in spec or "name" not in spec:
            raise ModelFormatError(f"layer {index} must be a dict with 'name' and 'type'")
        kwargs = {k: v for k, v in spec.items() if k not in ("name", "type")}
        if not all(isinstance(k, str) for k in kwargs):
            raise ModelFormatError(f"layer {index}'s settings must be named by strings")
        decode = _DECODERS.get(spec["type"]) if isinstance(spec["type"], str) else None
        if decode is None:
            raise ModelFormatError(
                f"layer {spec['name']!r} has type {spec['type']!r}; supported types are "
                f"{', '.join(sorted(_DECODERS))}"
            )
        try:
            modules[spec["name"]] = decode(**kwargs)
        except CompilerError as exc:
            raise ModelFormatError(f"layer {spec['name']!r}: {exc}") from exc
        except (TypeError, ValueError, RuntimeError, OverflowError, ZeroDivisionError) as exc:
            # the constructors of torch's layers check their arguments in many ways
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ModelFormatError(f"layer {spec['name']!r} ({spec['type']}): {reason}") from exc
    return nn.Sequential(modules)


@dataclass
class LoadedModel:
    """A model read from a file, in eval mode, with what commands need beside it."""

    model: nn.Module
    path: Path
    architecture: dict[str, Any] | None
    input_shape: tuple[int, ...]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    dataset: DatasetRef | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def save_model(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    input_shape: tuple[int, ...],
    preprocessing: Preprocessing | None = None,
    dataset: DatasetRef | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` in the safe format, atomically (a failed save leaves no partial file)."""
    path = Path(path)
    checkpoint = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture_of(model, input_shape),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "preprocessing": (preprocessing or Preprocessing()).to_dict(),
        "dataset": dataset.to_dict() if dataset else None,
        "metadata": dict(metadata or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# Limits that keep a small file from asking for a large allocation: a model may have at most
# MAX_ELEMENTS parameters and buffers, and no tensor on its forward pass (the input included) may
# hold more than MAX_ACTIVATION elements per sample. Sizes are checked on PyTorch's "meta" device
# (shapes only, no memory) before anything is allocated.
MAX_ELEMENTS = 1 << 26
MAX_ACTIVATION = 1 << 22
_LAYER_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _check_tensors(state_dict: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(state_dict, dict):
        raise ModelFormatError(
            f"{path}: 'state_dict' must map names to tensors, not a {type(state_dict).__name__}"
        )
    for name, tensor in state_dict.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise ModelFormatError(
                f"{path}: 'state_dict' must map names to tensors, not {name!r} to "
                f"{type(tensor).__name__}"
            )
        stored = tensor.untyped_storage().nbytes()
        if not tensor.is_contiguous() or stored < tensor.numel() * tensor.element_size():
            raise ModelFormatError(
                f"{path}: tensor {name!r} of shape {tuple(tensor.shape)} is a view of a smaller "
                "storage; save plain tensors (tensor.contiguous().clone())"
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise ModelFormatError(
                f"{path}: tensor {name!r} has {bad} NaN/Inf value(s); retrain or fix the model"
            )
    return state_dict


def _check_layer_names(architecture: Any, path: Path) -> None:
    layers = architecture.get("layers") if isinstance(architecture, dict) else None
    if not isinstance(layers, list) or not layers:
        raise ModelFormatError(f"{path}: architecture must hold a non-empty list 'layers'")
    seen = set()
    for index, spec in enumerate(layers):
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not _LAYER_NAME.match(name):
            raise ModelFormatError(
                f"{path}: layer {index}'s name must be letters, digits and '_', not {name!r}"
            )
        if name in seen:
            raise ModelFormatError(f"{path}: two layers are named {name!r}; names must be unique")
        seen.add(name)


def _check_sizes(skeleton: nn.Module, input_shape: tuple[int, ...], path: Path) -> None:
    """On the meta device: the parameter count and every tensor of a forward pass bounded."""
    elements = sum(t.numel() for t in skeleton.state_dict().values())
    if elements > MAX_ELEMENTS:
        raise ModelFormatError(
            f"{path}: the architecture has {elements:,} parameters and buffers; this compiler "
            f"takes at most {MAX_ELEMENTS:,}"
        )
    largest: list[tuple[int, str]] = []

    def record(module, inputs, output, name="") -> None:
        if isinstance(output, torch.Tensor):
            largest.append((output[0].numel(), name))

    hooks = [m.register_forward_hook(partial(record, name=n)) for n, m in skeleton.named_children()]
    try:
        skeleton(torch.zeros(1, *input_shape, device="meta"))
    except CompilerError as exc:
        raise ModelFormatError(f"{path}: the layers do not fit together: {exc}") from None
    except (RuntimeError, ValueError, IndexError) as exc:
        reason = " ".join(str(exc).split())
        raise ModelFormatError(
            f"{path}: the layers do not fit together or the input shape {input_shape}: {reason}"
        ) from None
    finally:
        for hook in hooks:
            hook.remove()
    size, name = max(largest, default=(0, ""))
    if size > MAX_ACTIVATION:
        raise ModelFormatError(
            f"{path}: layer {name!r} outputs {size:,} values per sample; this compiler takes at "
            f"most {MAX_ACTIVATION:,}"
        )


def _read(path: Path, trust_pickle: bool) -> Any:
    if not path.exists():
        raise ModelFormatError(f"model file {str(path)!r} does not exist")
    if not path.is_file():
        raise ModelFormatError(f"model file {str(path)!r} is not a regular file")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        # a readable pickle that names classes or functions: the one case --trust-pickle helps
        if not trust_pickle and "Unsupported global" in str(exc):
            raise ModelFormatError(
                f"{path} holds pickled Python objects (such as a whole nn.Module), and loading "
                "them runs code; pass --trust-pickle only if you trust its source, or re-save "
                "it with compiler.frontend.save_model"
            ) from None
        lines = [line.strip() for line in str(exc).splitlines()]
        after = lines.index("Please file an issue") if "Please file an issue" in lines else -1
        reason = next((ln for ln in lines[after + 1 :] if ln and "error" not in ln.lower()), "")
        raise ModelFormatError(
            f"{path} is truncated or corrupt, or not a PyTorch checkpoint"
            + (f" ({reason.lower()})" if reason and len(reason) < 80 else "")
        ) from None
    except Exception as exc:  # a malformed file makes torch.load raise almost anything
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFormatError(
            f"{path} is truncated or corrupt, or not a PyTorch checkpoint ({reason})"
        ) from None


def _input_shape(architecture: dict[str, Any], path: Path) -> tuple[int, ...]:
    shape = architecture.get("input_shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise ModelFormatError(
            f"{path}: architecture 'input_shape' must be a list of positive ints, not {shape!r}"
        )
    if math.prod(shape) > MAX_ACTIVATION:
        raise ModelFormatError(
            f"{path}: input shape {tuple(shape)} has {math.prod(shape):,} values per sample; "
            f"this compiler takes at most {MAX_ACTIVATION:,}"
        )
    return tuple(shape)


def _guess_input_shape(model: nn.Module, path: Path) -> tuple[int, ...]:
    """A pickled module records no input shape: take the first layer's input width."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, DeButLinear)):
            return (module.in_features,)
        if isinstance(module, (nn.Conv2d, DeButConv2d, DeButConv1d)):
            break
    raise ModelFormatError(
        f"{path}: cannot tell the input shape of a pickled {type(model).__name__} whose first "
        "layer is not linear; re-save it with compiler.frontend.save_model(..., input_shape=...)"
    )


def _entry(data: dict, key: str, kind: type, path: Path, default=None):
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ModelFormatError(
            f"{path}: '{key}' must be a {kind.__name__}, not a {type(value).__name__}"
        )
    return value


def _equal(value: Any, expected: str | int) -> bool:
    """``value == expected`` for a value of any type read from a file (a tensor included)."""
    return type(value) is type(expected) and value == expected


def load_model(path: str | os.PathLike, *, trust_pickle: bool = False) -> LoadedModel:
    """Read a model file; errors say what is wrong with it and what to do. Every size is checked
    before anything is allocated (see ``MAX_ELEMENTS``)."""
    path = Path(path)
    data = _read(path, trust_pickle)
    if isinstance(data, nn.Module):
        model = data.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        _check_tensors(model.state_dict(), path)
        return LoadedModel(
            model=model, path=path, architecture=None, input_shape=_guess_input_shape(model, path)
        )
    if not isinstance(data, dict) or not _equal(data.get("format"), FORMAT):
        raise ModelFormatError(
            f"{path} is not a {FORMAT} file (no 'format': {FORMAT!r} entry); save models with "
            "compiler.frontend.save_model, or pass a pickled nn.Module with --trust-pickle"
        )
    version = data.get("version")
    if not _equal(version, VERSION):
        raise ModelFormatError(
            f"{path} has format version {version!r}; this compiler reads version {VERSION}"
        )
    missing = [k for k in ("architecture", "state_dict") if k not in data]
    if missing:
        raise ModelFormatError(f"{path} lacks the entries {missing}")
    architecture = data["architecture"]
    _check_layer_names(architecture, path)
    input_shape = _input_shape(architecture, path)
    state_dict = _check_tensors(data["state_dict"], path)
    with torch.device("meta"):
        skeleton = build_model(architecture).eval()
    _check_sizes(skeleton, input_shape, path)
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state_dict.items()}
    if expected != given:
        problems = [f"missing {k}" for k in expected if k not in given]
        problems += [f"unexpected {k}" for k in given if k not in expected]
        problems += [
            f"{k} has shape {given[k]}, the architecture needs {expected[k]}"
            for k in expected
            if k in given and given[k] != expected[k]
        ]
        raise ModelFormatError(
            f"{path}: the state dict does not match the architecture: {'; '.join(problems[:5])}"
        )
    model = skeleton.to_empty(device="cpu")
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    dataset = _entry(data, "dataset", dict, path)
    preprocessing = _entry(data, "preprocessing", dict, path, Preprocessing().to_dict())
    return LoadedModel(
        model=model,
        path=path,
        architecture=architecture,
        input_shape=input_shape,
        preprocessing=Preprocessing.from_dict(preprocessing),
        dataset=DatasetRef.from_dict(dataset) if dataset else None,
        metadata=dict(_entry(data, "metadata", dict, path, {})),
    )
