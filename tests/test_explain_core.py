"""Explain core: region maps, exact shares, exact deletion curves, sanity flags an edge detector, every model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explain_helpers import LinearTwoClass

from ferlab.explain.faithfulness import auc, perturbation_curves
from ferlab.explain.methods import attribute, cam_layer, list_methods, register_method, unregister_method
from ferlab.explain.regions import LABELS, REGIONS, region_label_map, region_shares, region_shares_per_area
from ferlab.explain.sanity import parameter_randomisation_check
from ferlab.models import create_model, list_models


def test_region_map_covers_face_without_overlap():
    labels = region_label_map(48)
    assert labels.shape == (48, 48)
    present = set(np.unique(labels).tolist())
    assert {LABELS.index(r) for r in REGIONS} <= present  # every region non-empty, one label per pixel


def test_region_shares_exact_on_synthetic_maps():
    labels = region_label_map(48)
    attr = np.zeros((48, 48))
    attr[labels == LABELS.index("mouth")] = 3.0
    attr[labels == LABELS.index("eyes")] = 1.0
    mouth_n, eyes_n = (labels == LABELS.index("mouth")).sum(), (labels == LABELS.index("eyes")).sum()
    shares = region_shares(attr - 0.0 * attr, labels)
    assert shares["mouth"] == pytest.approx(3 * mouth_n / (3 * mouth_n + eyes_n))
    assert sum(shares.values()) == pytest.approx(1.0)
    uniform = region_shares_per_area(region_shares(np.ones((48, 48)), labels), labels)
    assert all(v == pytest.approx(1.0) for v in uniform.values())



def test_deletion_curve_exact_on_linear_model():
    w = torch.tensor([[4.0, 3.0], [2.0, 1.0]])
    curves = perturbation_curves(LinearTwoClass(w), torch.ones(1, 1, 2, 2), torch.tensor([0]), w.numpy()[None],
                                 steps=4, baseline="zero", score="logit")
    assert curves.deletion[0].tolist() == [10.0, 6.0, 3.0, 1.0, 0.0]
    assert curves.insertion[0].tolist() == [0.0, 4.0, 7.0, 9.0, 10.0]
    assert auc(curves.fractions, curves.deletion[0]) == pytest.approx((10 + 6 * 2 + 3 * 2 + 1 * 2 + 0) / 8)


def test_sanity_check_flags_edge_detector():
    def edges(model, x, targets):  # noqa: ANN001, ANN202 - ignores the model
        gy, gx = np.gradient(x[:, 0].detach().numpy(), axis=(1, 2))
        return np.hypot(gx, gy)

    register_method("edges_test")(edges)
    try:
        model = create_model("simple_cnn")
        x = torch.randn(3, 1, 48, 48)
        assert not parameter_randomisation_check(model, x, torch.zeros(3), "edges_test").passed
    finally:
        unregister_method("edges_test")


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("method", ["gradcam", "ig"])
def test_every_model_can_be_explained(name, method):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3)
    if not model.ferlab_cfg.cam_layer and method == "gradcam":
        pytest.skip("no CAM layer")
    x = torch.randn(2, *model.ferlab_cfg.input_size)
    raw = attribute(model, x, torch.tensor([0, 2]), method)
    assert raw.shape == (2, *x.shape[-2:]) and (raw >= 0).all() and np.isfinite(raw).all()
    if method == "gradcam":
        assert not cam_layer(model)._forward_hooks  # hooks released
    assert "scorecam" in list_methods()
