from collections import OrderedDict

import pytest
import torch
from torch import nn

from compiler.datasets import DatasetRef
from compiler.frontend.modelfile import Preprocessing, load_model, save_model
from compiler.nn.conv import DeButConv2d
from compiler.nn.linear import DeButLinear
from debut.errors import ModelFormatError, UnsupportedModelError

CHAIN = [[32, 16, 4, 2, 1], [32, 32, 8, 8, 4]]


def small_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            fc1=DeButLinear(16, 32, CHAIN),
            bn1=nn.BatchNorm1d(32),
            relu1=nn.ReLU(),
            drop=nn.Dropout(0.1),
            fc2=nn.Linear(32, 10),
        )
    ).eval()


def test_round_trip_is_exact_and_weights_only(tmp_path):
    model = small_model()
    path = save_model(
        tmp_path / "m.pt",
        model,
        input_shape=(16,),
        preprocessing=Preprocessing(scale=0.5, offset=-1.0),
        dataset=DatasetRef("sklearn-digits"),
        metadata={"note": "x"},
    )
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "debut-fpga-model" and raw["version"] == 1
    assert raw["architecture"]["layers"][0] == {
        "name": "fc1",
        "type": "DeButLinear",
        "in_features": 16,
        "out_features": 32,
        "chain": CHAIN,
        "bias": True,
    }
    loaded = load_model(path)
    x = torch.randn(4, 16)
    torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=0)
    assert loaded.preprocessing == Preprocessing(0.5, -1.0)
    assert loaded.dataset == DatasetRef("sklearn-digits")
    assert loaded.input_shape == (16,)
    assert loaded.metadata == {"note": "x"}
    assert not loaded.model.training


def test_conv_model_round_trip(tmp_path):
    model = nn.Sequential(
        DeButConv2d(3, 8, 3, [[24, 27, 8, 9, 1], [8, 24, 1, 3, 8]], padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 5),
    ).eval()
    loaded = load_model(save_model(tmp_path / "c.pt", model, input_shape=(3, 8, 8)))
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=0)


def test_unsupported_modules_are_listed(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.GELU())
    with pytest.raises(
        UnsupportedModelError, match=r"cannot describe these modules: 1 \(Tanh\), 2 \(GELU\)"
    ):
        save_model(tmp_path / "u.pt", model, input_shape=(4,))
    assert not list(tmp_path.iterdir())


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match=r"model file '.*nope.pt' does not exist"):
        load_model(tmp_path / "nope.pt")


def test_truncated_file(tmp_path):
    path = save_model(tmp_path / "m.pt", small_model(), input_shape=(16,))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ModelFormatError, match="is truncated or corrupt, or not a PyTorch checkpoint"
    ):
        load_model(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "g.pt"
    path.write_bytes(b"this is not a model")
    with pytest.raises(
        ModelFormatError, match="is truncated or corrupt, or not a PyTorch checkpoint"
    ):
        load_model(path)


def test_pickled_module_needs_trust(tmp_path):
    path = tmp_path / "pickled.pt"
    model = small_model()
    torch.save(model, path)
    with pytest.raises(ModelFormatError, match="pass --trust-pickle only if you trust its source"):
        load_model(path)
    loaded = load_model(path, trust_pickle=True)
    assert loaded.input_shape == (16,)
    x = torch.randn(3, 16)
    torch.testing.assert_close(loaded.model(x), model(x))


def test_wrong_format_and_version(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(small_model().state_dict(), path)
    with pytest.raises(ModelFormatError, match="is not a debut-fpga-model file"):
        load_model(path)
    save_model(path, small_model(), input_shape=(16,))
    data = torch.load(path, weights_only=True)
    data["version"] = 99
    torch.save(data, path)
    with pytest.raises(
        ModelFormatError, match="has format version 99; this compiler reads version 1"
    ):
        load_model(path)


def test_nan_weights_are_rejected(tmp_path):
    model = small_model()
    with torch.no_grad():
        model.fc1.twiddle[3] = float("nan")
    path = save_model(tmp_path / "nan.pt", model, input_shape=(16,))
    with pytest.raises(ModelFormatError, match=r"tensor 'fc1.twiddle' has 1 NaN/Inf value\(s\)"):
        load_model(path)


def test_state_dict_mismatch_and_invalid_chain(tmp_path):
    path = save_model(tmp_path / "m.pt", small_model(), input_shape=(16,))
    data = torch.load(path, weights_only=True)
    data["state_dict"]["fc1.twiddle"] = torch.zeros(5)
    torch.save(data, path)
    with pytest.raises(ModelFormatError, match="the state dict does not match the architecture"):
        load_model(path)
    data["architecture"]["layers"][0]["chain"] = [[32, 16, 3, 2, 1]]
    torch.save(data, path)
    with pytest.raises(
        ModelFormatError,
        match=r"layer 'fc1': factor 0 \[32, 16, 3, 2, 1\]: p=32 must be a multiple of r\*t=3",
    ):
        load_model(path)


def test_failed_save_leaves_previous_file(tmp_path, monkeypatch):
    path = save_model(tmp_path / "m.pt", small_model(), input_shape=(16,))
    before = path.read_bytes()

    def broken_save(obj, f):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, small_model(), input_shape=(16,))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
