from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from compiler.nn.conv import DeButConv2d
from compiler.nn.debutize import debutize
from compiler.nn.linear import DeButLinear
from debut.chain import Chain
from debut.errors import UnsupportedModelError

FC_CHAIN = [[16, 16, 4, 4, 1], [32, 16, 2, 1, 4], [32, 32, 4, 4, 8]]  # 32 x 16, rule-conforming
CONV_CHAIN = [[24, 27, 8, 9, 1], [8, 24, 1, 3, 8]]  # 8 x (3*3*3)


def model_with_chain_weights() -> nn.Sequential:
    """Dense layers whose weights are exactly products of the chains above."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    fc = nn.Linear(16, 32)
    conv_chain, fc_chain = Chain.from_list(CONV_CHAIN), Chain.from_list(FC_CHAIN)
    with torch.no_grad():
        filt = conv_chain.materialize(rng.standard_normal(conv_chain.params))
        conv.weight.copy_(torch.tensor(filt).reshape(8, 3, 3, 3).permute(0, 3, 1, 2))
        fc.weight.copy_(torch.tensor(fc_chain.materialize(rng.standard_normal(fc_chain.params))))
    return nn.Sequential(
        OrderedDict(
            conv=conv,
            relu=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(2),
            flat=nn.Flatten(),
            head=nn.Sequential(OrderedDict(fc=nn.Linear(32, 16), act=nn.ReLU(), out=fc)),
        )
    ).double()


def test_exact_products_are_recovered_and_outputs_match():
    model = model_with_chain_weights()
    new, reports = debutize(
        model, {"conv": CONV_CHAIN, "head.out": FC_CHAIN}, sweeps=10, restarts=3
    )
    assert isinstance(new.conv, DeButConv2d) and isinstance(new.head.out, DeButLinear)
    assert isinstance(model.conv, nn.Conv2d), "the input model must be left unchanged"
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(new(x), model(x), rtol=1e-6, atol=1e-6)
    assert [r.name for r in reports] == ["conv", "head.out"]
    assert all(r.rel_error < 1e-6 for r in reports)
    assert reports[1].params == Chain.from_list(FC_CHAIN).params
    assert reports[1].dense_params == 32 * 16


def test_report_compares_with_svd_at_equal_params():
    torch.manual_seed(1)
    model = nn.Sequential(OrderedDict(fc=nn.Linear(16, 32)))
    _, (report,) = debutize(model, {"fc": FC_CHAIN})
    weight = model.fc.weight.detach().double().numpy()
    rank = report.params // (32 + 16)
    u, s, vt = np.linalg.svd(weight)
    approx = (u[:, :rank] * s[:rank]) @ vt[:rank]
    expected = np.linalg.norm(weight - approx) / np.linalg.norm(weight)
    assert report.svd_rank == rank
    assert report.svd_rel_error == pytest.approx(expected)
    assert 0 < report.rel_error < 1
    assert "fewer), ALS error" in report.line()


def test_compression_ratio_picks_a_chain():
    model = nn.Sequential(OrderedDict(fc=nn.Linear(64, 128)))
    new, (report,) = debutize(model, {"fc": 0.75})
    assert report.params <= 0.25 * 64 * 128
    assert new.fc.chain.in_features == 64 and new.fc.chain.out_features == 128


def test_bad_layer_names_and_types():
    model = nn.Sequential(OrderedDict(fc=nn.Linear(4, 4), act=nn.ReLU()))
    with pytest.raises(UnsupportedModelError, match=r"layers \['nope'\] are not in the model"):
        debutize(model, {"nope": [[4, 4, 4, 4, 1]]})
    with pytest.raises(
        UnsupportedModelError, match=r"must be nn\.Linear or nn\.Conv2d to be debutized, not ReLU"
    ):
        debutize(model, {"act": [[4, 4, 4, 4, 1]]})
