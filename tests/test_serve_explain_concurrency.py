"""/v1/explain under load: explanations run on the server's own copy of the network, one at a time, so requests
running meanwhile (other explains, predicts) cannot change a heat map."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ferlab.predict import Predictor
from ferlab.serve.service import PrivateNetworkExplainer

BUNDLED = Path(__file__).resolve().parents[1] / "ferlab" / "assets" / "models" / "default.pt"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.from_checkpoint(str(BUNDLED), tta="flip")


def test_concurrent_explains_and_predicts_leave_each_explanation_as_it_is_alone(predictor):
    faces = np.random.default_rng(0).integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
    explain = PrivateNetworkExplainer()
    alone = [explain(predictor, f, face_index=0, target=None, method="gradcam", detect=False) for f in faces]
    results: dict[int, list] = {i: [] for i in range(len(faces))}
    errors: list[BaseException] = []

    def explain_many(i: int) -> None:
        try:
            for _ in range(3):
                results[i].append(explain(predictor, faces[i], face_index=0, target=None, method="gradcam",
                                          detect=False))
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    def predict_many() -> None:
        for _ in range(20):
            predictor.predict(faces[0], detect=False)

    threads = [threading.Thread(target=explain_many, args=(i,)) for i in range(len(faces))]
    threads.append(threading.Thread(target=predict_many))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    for i, runs in results.items():
        assert len(runs) == 3
        for r in runs:
            assert r.label == alone[i].label and r.regions == pytest.approx(alone[i].regions, abs=1e-6)


def test_the_served_network_is_never_hooked_or_replaced(predictor):
    network = predictor.classifier.torch_model
    PrivateNetworkExplainer()(predictor, np.full((64, 64, 3), 120, np.uint8), face_index=0, target=None,
                              method="gradcam", detect=False)
    assert predictor.classifier.torch_model is network
    assert all(not m._forward_hooks and not m._backward_hooks for m in network.modules())
