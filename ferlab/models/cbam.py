"""Residual net with CBAM attention (Woo et al. 2018) and a first layer seeded with hand-crafted facial filters."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ferlab.models._registry import register_model
from ferlab.models.resnet import init_conv_bn, residual_stage

__all__ = ["cbam_resnet", "CBAM", "FacialStem", "FACIAL_KERNEL_NAMES", "facial_kernels"]

_K = 7  # facial kernel size: big enough for an oriented Gabor or a centre-surround blob


def _grid() -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(_K) - _K // 2
    return np.meshgrid(r, r)  # x (columns), y (rows)


def _gabor(theta: float, wavelength: float = 4.0, sigma: float = 2.0, gamma: float = 0.5, phase: float = 0.0):  # noqa: ANN202
    """Gabor with stripes *along* direction `theta` (0 = horizontal stripes, responds to horizontal structures)."""
    x, y = _grid()
    # coordinate across the stripes: for theta = 0 the stripes are horizontal, so it is y.
    across = -x * np.sin(theta) + y * np.cos(theta)
    along = x * np.cos(theta) + y * np.sin(theta)
    return np.exp(-(along**2 * gamma**2 + across**2) / (2 * sigma**2)) * np.cos(2 * np.pi * across / wavelength + phase)


def _dog(sigma_c: float = 1.0, sigma_s: float = 2.5):  # noqa: ANN202
    """Centre-surround: dark centre on a bright surround -> positive response (pupil, eye socket, nostril)."""
    x, y = _grid()
    r2 = x**2 + y**2
    centre = np.exp(-r2 / (2 * sigma_c**2)) / sigma_c**2
    surround = np.exp(-r2 / (2 * sigma_s**2)) / sigma_s**2
    return surround - centre


def _arc(radius: float, centre_y: float, width: float = 0.8):  # noqa: ANN202
    """Edge along a circular arc (dark below the arc): jaw line and chin contours."""
    x, y = _grid()
    d = np.sqrt(x**2 + (y - centre_y) ** 2) - radius  # signed distance to the arc
    return -d * np.exp(-(d**2) / (2 * width**2))


# (name, builder, what it targets). Names are public: explainers label first-layer maps with them.
# Signs are chosen so the targeted structure gives a positive response (it survives the stem's ReLU).
_FACIAL_KERNELS = (
    ("brow_edge", lambda: _gabor(0.0, phase=-np.pi / 2),
     "odd horizontal Gabor: dark-above/bright-below edge of the eyebrows (raised/lowered brows)"),
    ("brow_furrow", lambda: -_gabor(np.pi / 2, wavelength=4.0),
     "even vertical Gabor, negated: dark vertical glabella lines between frowning brows"),
    ("eye_blob", lambda: _dog(1.0, 2.5), "centre-surround: dark pupil/eye opening on brighter skin"),
    ("eye_socket", lambda: _dog(1.8, 3.2), "wide centre-surround: whole eye region, widens in surprise/fear"),
    ("nose_bridge", lambda: _gabor(np.pi / 2, phase=np.pi / 2),
     "odd vertical Gabor: the vertical edges along the nose bridge (wrinkled in disgust)"),
    ("mouth_line", lambda: -_gabor(0.0, wavelength=5.0),
     "even horizontal Gabor, negated: dark horizontal lip line / open mouth"),
    ("mouth_corner_up", lambda: _gabor(np.pi / 4),
     "diagonal Gabor (+45 deg): upturned mouth corners, nasolabial folds"),
    ("mouth_corner_down", lambda: _gabor(-np.pi / 4), "diagonal Gabor (-45 deg): downturned mouth corners"),
    ("jaw_curve", lambda: _arc(3.0, -3.0), "arc edge bending down: the chin and jaw contour"),
    ("jaw_open", lambda: _arc(3.0, 3.0), "arc edge bending up: a dropped jaw / open-mouth outline"),
)
#: Names of the hand-crafted first-layer filters, in channel order (channels 0..len-1 of the stem output).
FACIAL_KERNEL_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _FACIAL_KERNELS)
#: What each filter is meant to respond to (same order as FACIAL_KERNEL_NAMES).
FACIAL_KERNEL_INTENTS: dict[str, str] = {name: why for name, _, why in _FACIAL_KERNELS}


def facial_kernels(in_chans: int = 1) -> torch.Tensor:
    """The hand-crafted filters as conv weights (K x in_chans x 7 x 7): zero mean, the L2 norm of a Kaiming filter."""
    bank = np.stack([make() for _, make, _ in _FACIAL_KERNELS]).astype(np.float64)
    bank -= bank.mean(axis=(1, 2), keepdims=True)  # no response to flat skin
    bank /= np.linalg.norm(bank.reshape(len(bank), -1), axis=1)[:, None, None]
    bank *= math.sqrt(2.0)  # E||w||^2 of a Kaiming-normal filter with gain sqrt(2)
    weight = torch.from_numpy(bank).float().unsqueeze(1)
    return weight.repeat(1, in_chans, 1, 1) / in_chans  # a gray image repeated over channels gives the same response


class FacialStem(nn.Module):
    """7x7 stride-2 stem: `facial` (hand-crafted, optionally frozen) + `learned` filters, concatenated, BN, ReLU."""

    def __init__(self, in_chans: int, out_ch: int, freeze: bool) -> None:
        super().__init__()
        k = len(FACIAL_KERNEL_NAMES)
        self.facial = nn.Conv2d(in_chans, k, _K, stride=2, padding=_K // 2, bias=False)
        self.learned = nn.Conv2d(in_chans, out_ch - k, _K, stride=2, padding=_K // 2, bias=False)
        with torch.no_grad():
            self.facial.weight.copy_(facial_kernels(in_chans))
        self.facial.weight.requires_grad_(not freeze)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.relu(self.bn(torch.cat([self.facial(x), self.learned(x)], dim=1)))


class ChannelAttention(nn.Module):
    """Shared MLP over global average- and max-pooled features -> one sigmoid gate per channel."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1, bias=False))

    def forward(self, x):  # noqa: ANN001, ANN201
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """7x7 conv over the channel-wise mean and max maps -> one sigmoid gate per pixel."""

    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x):  # noqa: ANN001, ANN201
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(maps))


class CBAM(nn.Sequential):
    """Convolutional Block Attention Module: channel attention, then spatial attention (Woo et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__(ChannelAttention(channels, reduction), SpatialAttention())


class CBAMResNet(nn.Module):
    """Facial stem (stride 2) -> residual stages with CBAM after each -> GAP -> dropout -> classifier."""

    def __init__(self, *, num_classes: int, in_chans: int, widths: tuple[int, ...] = (64, 128, 256), blocks: int = 2,
                 dropout: float = 0.3, l2: float = 1e-4, freeze_facial_kernels: bool = False) -> None:
        super().__init__()
        self.l2 = l2
        self.stem = FacialStem(in_chans, widths[0], freeze=freeze_facial_kernels)
        chans = (widths[0], *widths)
        self.stages = nn.Sequential(*[
            nn.Sequential(*residual_stage(a, b, blocks, 1 if i == 0 else 2), CBAM(b))
            for i, (a, b) in enumerate(zip(chans[:-1], chans[1:], strict=True))
        ])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.classifier = nn.Linear(widths[-1], num_classes)
        init_conv_bn(self.stages)
        nn.init.kaiming_normal_(self.stem.learned.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.classifier(self.pool(self.stages(self.stem(x))))

    def regularization_loss(self) -> torch.Tensor:
        """`l2 * sum of squared conv weights` (Keras-style kernel L2); the training engine adds it to the loss."""
        weights = [m.weight for m in self.modules() if isinstance(m, nn.Conv2d) and m.weight.requires_grad]
        if not self.l2 or not weights:
            return self.classifier.weight.new_zeros(())
        return self.l2 * sum(w.pow(2).sum() for w in weights)

    def fixed_parameters(self) -> list[nn.Parameter]:
        """Parameters frozen by design (the facial filters when `freeze_facial_kernels`): never unfreeze them."""
        return [p for p in self.stem.facial.parameters() if not p.requires_grad]


@register_model(family="cbam", cam_layer="stages.2", first_conv="stem.facial", classifier="classifier")
def cbam_resnet(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
                blocks: int = 2, dropout: float = 0.3, l2: float = 1e-4, freeze_facial_kernels: bool = False,
                ) -> nn.Module:
    """ResNet 64/128/256 + CBAM per stage, facial-filter 7x7 stride-2 stem (frozen by flag), conv L2 penalty."""
    # The stride-2 stem puts the first stage at 24x24: ~4x cheaper than a full-resolution first stage.
    return CBAMResNet(num_classes=num_classes, in_chans=in_chans, blocks=blocks, dropout=dropout, l2=l2,
                      freeze_facial_kernels=freeze_facial_kernels)
