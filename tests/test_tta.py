"""Test-time augmentation views: names shared with the CLI, view contents, cost, and the shipped-mode choice."""

from __future__ import annotations

import numpy as np
import torch

from ferlab.evaluate.suite import TTA_NAMES
from ferlab.export.model_card import choose_tta
from ferlab.train.checkpoint import TTA_MODES, tta_cost, tta_views


def test_cli_names_are_the_registered_modes() -> None:
    assert tuple(TTA_MODES) == TTA_NAMES


def test_flipcrop_is_the_face_its_centre_crop_and_their_mirrors() -> None:
    x = torch.arange(48 * 48, dtype=torch.int64).reshape(1, 48, 48).remainder(256).to(torch.uint8)
    views = tta_views(x, "flipcrop")
    assert len(views) == 4 and all(v.shape == x.shape and v.dtype == torch.uint8 for v in views)
    assert torch.equal(views[0], x) and torch.equal(views[1], x.flip(-1)) and torch.equal(views[3], views[2].flip(-1))
    assert not torch.equal(views[2], x)  # a zoomed-in crop, not the face again
    flat = torch.full((2, 48, 48), 77, dtype=torch.uint8)
    assert all(torch.equal(v, flat) for v in tta_views(flat, "flipcrop"))  # crops of a constant stay constant
    # the centre crop keeps the middle: the centre pixel of a single bright dot stays the brightest after zoom
    dot = torch.zeros(1, 48, 48, dtype=torch.uint8)
    dot[0, 23:25, 23:25] = 255
    centre = tta_views(dot, "flipcrop")[2][0].numpy()
    assert np.unravel_index(centre.argmax(), centre.shape) in {(23, 23), (23, 24), (24, 23), (24, 24)}


def test_cost_is_the_number_of_views_and_orders_the_choice() -> None:
    assert [tta_cost(m) for m in TTA_NAMES] == [1, 2, 4, 10]
    reports = [{"split": "val", "tta": t, "accuracy": a}
               for t, a in (("none", 0.60), ("flip", 0.61), ("flipcrop", 0.615), ("tencrop", 0.616))]
    assert choose_tta(reports) == "flipcrop"  # within 0.2 points of the best, 4 views instead of 10
    speeds = {"none": 2000.0, "flip": 1000.0, "flipcrop": 400.0, "tencrop": 200.0}
    assert choose_tta(reports, speeds=speeds) == "flip"  # flipcrop under the 500 faces/s floor
