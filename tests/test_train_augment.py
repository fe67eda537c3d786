"""Batched augmentation: shapes, range, determinism per generator, every op changes images; mixup/cutmix."""

from __future__ import annotations

import pytest
import torch

from ferlab.data.augment import AUGMENT_PRESETS, AugmentConfig, augment_batch, resolve_augment
from ferlab.errors import ConfigError
from ferlab.train.mixing import cutmix, mix_batch, mixup, one_hot


def _batch(n: int = 8, size: int = 24) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("preset", list(AUGMENT_PRESETS))
def test_presets_shape_range_determinism(preset):
    x = _batch()
    cfg = AUGMENT_PRESETS[preset]
    a = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    assert a.shape == (8, 1, 24, 24) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    if preset == "none":
        assert torch.equal(a, x.float() / 255)
    else:
        c = augment_batch(x, cfg, torch.Generator().manual_seed(4))
        assert not torch.equal(a, c)


@pytest.mark.parametrize(
    "option",
    [{"crop_padding": 3}, {"flip": 1.0}, {"rotate": 20.0}, {"shift": 0.2}, {"shear": 15.0}, {"zoom": 0.3},
     {"erase": 1.0}, {"brightness": 0.3}, {"contrast": 0.5}],
)
def test_each_op_changes_images(option):
    x = _batch()
    out = augment_batch(x, AugmentConfig(**option), torch.Generator().manual_seed(0))
    changed = (out - x.float() / 255).abs().flatten(1).amax(1) > 1e-3
    assert changed.sum() >= 6  # (nearly) every image of the batch is altered
    assert out.shape == (8, 1, 24, 24)


def test_flip_is_an_exact_mirror():
    x = _batch()
    out = augment_batch(x, AugmentConfig(flip=1.0), torch.Generator().manual_seed(0))
    assert torch.equal(out, x.flip(-1).float() / 255)


def test_pad_crop_is_a_shifted_window():
    x = _batch(n=4)
    out = augment_batch(x, AugmentConfig(crop_padding=2), torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x.float() / 255, (2, 2, 2, 2), mode="reflect")
    for i in range(4):  # every output is one of the 25 windows of its padded image
        windows = [padded[i, :, dy:dy + 24, dx:dx + 24] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_random_crop_is_a_window_of_the_crop_size():
    x = _batch(n=6)
    out = augment_batch(x, AugmentConfig(crop_size=20), torch.Generator().manual_seed(0))
    assert out.shape == (6, 1, 20, 20)
    offsets = set()
    for i in range(6):  # every output is one of the 25 windows of its image
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if torch.equal(out[i], x[i, :, dy:dy + 20, dx:dx + 20].float() / 255)]
        assert hits
        offsets.add(hits[0])
    assert len(offsets) > 1  # each image draws its own offset
    assert torch.equal(augment_batch(x, AugmentConfig(crop_size=24), torch.Generator()), x.float() / 255)


def test_resolve_overrides_and_errors():
    cfg = resolve_augment("light", {"rotate": 5, "erase_area": [0.1, 0.2]})
    assert cfg.rotate == 5 and cfg.flip == AUGMENT_PRESETS["light"].flip and cfg.erase_area == (0.1, 0.2)
    with pytest.raises(ConfigError, match="unknown augment preset"):
        resolve_augment("extreme")
    with pytest.raises(ConfigError, match="probability"):
        AugmentConfig(flip=2.0)


def test_option_values_are_numbers_or_number_text_and_anything_else_is_one_line():
    """YAML 1.1 reads `1e-1` as text: accepted; `abc`, `maybe`, booleans and half pixels are ConfigErrors (they
    were TypeError tracebacks from the range checks)."""
    cfg = resolve_augment("strong", {"shift": "1e-1", "crop_padding": 4.0, "erase_area": ["0.1", 0.3]})
    assert (cfg.shift, cfg.crop_padding, cfg.erase_area) == (0.1, 4, (0.1, 0.3))
    for bad, message in (({"rotate": "abc"}, "rotate must be a number, got 'abc'"),
                         ({"flip": True}, "flip must be a number, got True"),
                         ({"crop_padding": 2.5}, "crop_padding must be a whole number of pixels"),
                         ({"erase_area": 0.2}, "erase_area must be two numbers")):
        with pytest.raises(ConfigError, match=message):
            resolve_augment("strong", bad)


def test_a_bad_augment_option_from_the_command_line_is_one_line(tmp_path, capsys):
    from ferlab.cli.main import main

    assert main(["train", "--model", "simple_cnn", "--data", str(tmp_path), "--epochs", "1", "--out",
                 str(tmp_path / "run"), "--set", "augment_options.flip=maybe"]) == 2
    assert capsys.readouterr().err.strip() == "ferlab: error: augment option flip must be a number, got 'maybe'"


def test_mixup_and_cutmix_keep_target_mass():
    x = torch.rand(6, 1, 16, 16)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    t = one_hot(y, 3)
    for fn in (mixup, cutmix):
        mixed, targets = fn(x, t, 1.0, torch.Generator().manual_seed(0))
        assert mixed.shape == x.shape
        assert torch.allclose(targets.sum(1), torch.ones(6))
        again, targets2 = fn(x, t, 1.0, torch.Generator().manual_seed(0))
        assert torch.equal(mixed, again) and torch.equal(targets, targets2)
    same, hard = mix_batch(x, y, 3, mixup_alpha=0, cutmix_alpha=0, gen=torch.Generator())
    assert same is x and hard is y
    _, soft = mix_batch(x, y, 3, mixup_alpha=0.4, cutmix_alpha=0.4, gen=torch.Generator().manual_seed(0))
    assert soft.shape == (6, 3) and torch.allclose(soft.sum(1), torch.ones(6))


def test_affine_grid_matches_torch():
    from ferlab.data.augment import _affine_grid

    theta = torch.eye(2, 3).repeat(3, 1, 1) + 0.1 * torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(3, 1, 10, 14)
    expected = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    torch.testing.assert_close(_affine_grid(theta.view(3, 6), x), expected, atol=1e-6, rtol=1e-5)


def test_zero_rotation_affine_is_identity():
    x = _batch()
    cfg = AugmentConfig(zoom=1e-9)
    out = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x.float() / 255, atol=1e-4, rtol=0)
