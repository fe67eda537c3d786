"""`fer_resnet`: the fast residual net behind the bundled model, built for accuracy per CPU-hour at 48x48.

Why this shape: on a CPU the cost of a conv net on 48x48 faces sits in its full-resolution layers. A
stride-2 stem (48 -> 24) keeps a cheap full-resolution edge detector, then four residual stages run at
24/12/6/3 pixels, so the net has ResNet-18's depth at a fraction of its FLOPs.
"""

from __future__ import annotations

import torch
from torch import nn

from ferlab.models._registry import register_model

__all__ = ["fer_resnet", "FerResNet"]


def _conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a (projected when needed) identity shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = (
            nn.Identity()
            if in_ch == out_ch and stride == 1
            else nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class FerResNet(nn.Module):
    """Stride-2 stem, residual stages of `blocks` BasicBlocks with `widths` channels, GAP, dropout, linear head."""

    def __init__(self, *, num_classes: int, in_chans: int, widths: tuple[int, ...], blocks: tuple[int, ...],
                 dropout: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_bn_relu(in_chans, widths[0] // 2), _conv_bn_relu(widths[0] // 2, widths[0], 2))
        stages, chans = [], widths[0]
        for i, (width, depth) in enumerate(zip(widths, blocks, strict=True)):
            strides = [2 if i > 0 else 1] + [1] * (depth - 1)
            layers = [BasicBlock(chans if j == 0 else width, width, s) for j, s in enumerate(strides)]
            stages.append(nn.Sequential(*layers))
            chans = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.classifier = nn.Linear(chans, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stages(self.stem(x))))


@register_model(family="resnet", cam_layer="stages.2", first_conv="stem.0.0", classifier="classifier",
                mean=(0.5,), std=(0.25,))
def fer_resnet(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None,
               widths: tuple[int, ...] = (48, 96, 192, 384), blocks: tuple[int, ...] = (2, 2, 2, 2),
               dropout: float = 0.2) -> nn.Module:
    """Fast 4-stage ResNet for 48x48 (stride-2 stem, stages at 24/12/6/3 px): the bundled model's architecture."""
    model = FerResNet(num_classes=num_classes, in_chans=in_chans, widths=tuple(widths), blocks=tuple(blocks),
                      dropout=dropout)
    if pretrained:
        from ferlab.models.weights import load_weights

        load_weights(model, pretrained)
    return model
