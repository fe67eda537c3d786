"""Batched, in-memory augmentation of face batches: one vectorised op per transform, no per-sample Python.

Every random draw comes from a caller-given `torch.Generator` (on the CPU), so a batch augments the same
way for the same generator state whatever the device.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F

from ferlab.errors import ConfigError

__all__ = ["AugmentConfig", "AUGMENT_PRESETS", "resolve_augment", "augment_batch"]


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each transform; 0 disables it. Angles in degrees, shifts/crops as fractions of the side."""

    crop_padding: int = 0  # pad (reflect) by this many pixels, then crop back at a random offset
    crop_size: int = 0  # train on random crops of this side (pixels, no resize); the model still sees whole faces later
    flip: float = 0.0  # probability of a horizontal flip
    rotate: float = 0.0  # max rotation (degrees)
    shift: float = 0.0  # max translation (fraction of the side)
    shear: float = 0.0  # max shear (degrees)
    zoom: float = 0.0  # scale drawn in [1 - zoom, 1 + zoom]
    erase: float = 0.0  # probability of random erasing
    erase_area: tuple[float, float] = (0.02, 0.2)  # erased area as a fraction of the image
    brightness: float = 0.0  # additive offset drawn in [-b, b] (images in [0, 1])
    contrast: float = 0.0  # contrast factor drawn in [1 - c, 1 + c]

    def __post_init__(self) -> None:
        for name in ("flip", "erase"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"augment option {name} is a probability in [0, 1], got {getattr(self, name)}")
        for name in ("crop_padding", "crop_size", "rotate", "shift", "shear", "zoom", "brightness", "contrast"):
            if getattr(self, name) < 0:
                raise ConfigError(f"augment option {name} must be >= 0, got {getattr(self, name)}")
        if self.zoom >= 1 or self.contrast >= 1 or self.shift >= 1:
            raise ConfigError("augment options zoom, contrast and shift must be < 1")
        lo, hi = self.erase_area
        if not 0 < lo <= hi < 1:
            raise ConfigError(f"augment option erase_area must satisfy 0 < lo <= hi < 1, got {self.erase_area}")

    @property
    def active(self) -> bool:
        return any(v for k, v in asdict(self).items() if k != "erase_area")

    @property
    def uses_affine(self) -> bool:
        return bool(self.rotate or self.shift or self.shear or self.zoom)


#: Named presets. `standard` is the usual FER2013 recipe (flip, +-10 deg, 10% shift/zoom, pad-crop).
AUGMENT_PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "light": AugmentConfig(flip=0.5, crop_padding=2),
    "standard": AugmentConfig(flip=0.5, crop_padding=4, rotate=10, shift=0.05, zoom=0.1, brightness=0.1, contrast=0.1),
    "strong": AugmentConfig(flip=0.5, crop_padding=4, rotate=15, shift=0.1, shear=8, zoom=0.15, erase=0.5,
                            brightness=0.2, contrast=0.2),
}


def resolve_augment(preset: str | AugmentConfig, overrides: dict[str, Any] | None = None) -> AugmentConfig:
    """A preset by name with per-option overrides (e.g. `{"rotate": 20}`) applied on top."""
    if isinstance(preset, AugmentConfig):
        base = preset
    elif preset in AUGMENT_PRESETS:
        base = AUGMENT_PRESETS[preset]
    else:
        raise ConfigError(f"unknown augment preset '{preset}'; choose from {', '.join(AUGMENT_PRESETS)}")
    if not overrides:
        return base
    known = {f.name for f in fields(AugmentConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown augment option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    types = {f.name: f.type for f in fields(AugmentConfig)}
    values = {name: _option_value(name, value, types[name]) for name, value in overrides.items()}
    return replace(base, **values)


def _number(name: str, value: Any, whole: bool) -> float | int:
    """An option's number: ints and floats, or their text (YAML 1.1 reads `1e-1` as a string); anything else,
    booleans included, is a one-line ConfigError (it was a TypeError traceback from the range checks)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"augment option {name} must be {'a whole number' if whole else 'a number'}, "
                          f"got {value!r}")
    if whole:
        if value != int(value):
            raise ConfigError(f"augment option {name} must be a whole number of pixels, got {value!r}")
        return int(value)
    return float(value)


def _option_value(name: str, value: Any, kind: Any) -> Any:
    if name == "erase_area":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ConfigError(f"augment option erase_area must be two numbers [lo, hi], got {value!r}")
        return tuple(_number(name, v, whole=False) for v in value)
    return _number(name, value, whole=kind in (int, "int"))


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (hi - lo) + lo


def _pad_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Reflect-pad by `pad` and crop each image back at its own random offset (one gather for the batch)."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect" if pad < min(h, w) else "replicate")
    return _random_windows(padded, h, w, gen)


def _random_windows(x: torch.Tensor, ch: int, cw: int, gen: torch.Generator) -> torch.Tensor:
    """One `ch` x `cw` window per image at its own random offset (two gathers for the batch)."""
    n, c, h, w = x.shape
    dy = torch.randint(0, h - ch + 1, (n,), generator=gen).to(x.device)
    dx = torch.randint(0, w - cw + 1, (n,), generator=gen).to(x.device)
    rows = (dy[:, None] + torch.arange(ch, device=x.device)[None]).view(n, 1, ch, 1).expand(n, c, ch, w)
    cols = (dx[:, None] + torch.arange(cw, device=x.device)[None]).view(n, 1, 1, cw).expand(n, c, ch, cw)
    return x.gather(2, rows).gather(3, cols)


def _random_crop(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Each image cropped to `size` x `size` at its own random offset; a side already that small is left alone."""
    h, w = x.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    return x if (ch, cw) == (h, w) else _random_windows(x, ch, cw, gen)


def _flip(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    mask = (torch.rand(x.shape[0], generator=gen) < p).to(x.device).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(-1), x)


def _affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Rotation, shift, shear and zoom folded into one 2x3 matrix per image; one grid_sample for the batch."""
    n = x.shape[0]
    angle = torch.deg2rad(_uniform(n, -cfg.rotate, cfg.rotate, gen))
    shear = torch.deg2rad(_uniform(n, -cfg.shear, cfg.shear, gen))
    scale = _uniform(n, 1 - cfg.zoom, 1 + cfg.zoom, gen)
    tx = _uniform(n, -cfg.shift, cfg.shift, gen) * 2  # affine_grid works in [-1, 1]: a side is 2 units
    ty = _uniform(n, -cfg.shift, cfg.shift, gen) * 2
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    # output -> input sampling matrix: rotation @ shear, divided by the zoom (zoom > 1 magnifies).
    a, b = cos / scale, (cos * tan - sin) / scale
    c, d = sin / scale, (sin * tan + cos) / scale
    return F.grid_sample(x, _affine_grid(torch.stack([a, b, tx, c, d, ty], 1), x), mode="bilinear",
                         padding_mode="border", align_corners=False)


def _affine_grid(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`F.affine_grid` (align_corners=False) as ONE matrix product over the batch: pixel coords (HW x 3) @ all the
    matrices (3 x 2N). On CPU this is ~30x faster than affine_grid's batched matmul with its tiny K=3 inner size."""
    n, _, h, w = x.shape
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) * 2 + 1) / h - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([gx.reshape(-1), gy.reshape(-1), torch.ones(h * w, device=x.device, dtype=x.dtype)], 1)
    mats = theta.to(x.device, x.dtype).view(n, 2, 3).permute(2, 0, 1).reshape(3, 2 * n)
    return (coords @ mats).view(h * w, n, 2).permute(1, 0, 2).reshape(n, h, w, 2)


def _erase(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Random erasing: one rectangle per chosen image, filled with a random grey level (row mask x column mask)."""
    n, c, h, w = x.shape
    area = _uniform(n, *cfg.erase_area, gen) * h * w
    ratio = torch.exp(_uniform(n, math.log(0.3), math.log(1 / 0.3), gen))
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    y0 = (torch.rand(n, generator=gen) * (h - eh + 1)).floor()
    x0 = (torch.rand(n, generator=gen) * (w - ew + 1)).floor()
    chosen = (torch.rand(n, generator=gen) < cfg.erase).view(-1, 1)
    fill = torch.rand(n, generator=gen).to(x.device, x.dtype).view(-1, 1, 1, 1)
    ys, xs = torch.arange(h).view(1, h), torch.arange(w).view(1, w)
    rows = (ys >= y0.view(-1, 1)) & (ys < (y0 + eh).view(-1, 1)) & chosen
    cols = (xs >= x0.view(-1, 1)) & (xs < (x0 + ew).view(-1, 1))
    inside = (rows.unsqueeze(2) & cols.unsqueeze(1)).unsqueeze(1).to(x.device)
    return torch.where(inside, fill, x)


def _color(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    contrast = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, gen).to(x.device, x.dtype).view(-1, 1, 1, 1)
    bright = _uniform(n, -cfg.brightness, cfg.brightness, gen).to(x.device, x.dtype).view(-1, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + bright).clamp_(0.0, 1.0)


def augment_batch(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Augment a batch (uint8 or float N x C x H x W, or N x H x W) -> float in [0, 1], N x C x H x W (H and W
    become `crop_size` when it is set and smaller).

    Draws are made in a fixed order from `generator` (CPU), so results are reproducible for a given state.
    """
    x = images if images.ndim == 4 else images.unsqueeze(1)
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    if not cfg.active or x.shape[0] == 0:
        return x
    if cfg.crop_padding:
        x = _pad_crop(x, cfg.crop_padding, generator)
    if cfg.crop_size:
        x = _random_crop(x, cfg.crop_size, generator)
    if cfg.flip:
        x = _flip(x, cfg.flip, generator)
    if cfg.uses_affine:
        x = _affine(x, cfg, generator)
    if cfg.brightness or cfg.contrast:
        x = _color(x, cfg, generator)
    if cfg.erase:
        x = _erase(x, cfg, generator)
    return x
