"""mini-Xception (Arriaga, Ploeger & Valdenegro 2017): depthwise-separable residual modules, no dense layer."""

from __future__ import annotations

from torch import nn

from ferlab.models._registry import register_model

__all__ = ["mini_xception", "MiniXception"]


def _conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    # "valid" padding as in the paper's Keras code: 48 -> 46 -> 44.
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class SeparableConv2d(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1 (Keras SeparableConv2D without bias)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False),
                         nn.Conv2d(in_ch, out_ch, 1, bias=False))


class XceptionModule(nn.Module):
    """sepconv-BN-ReLU-sepconv-BN-maxpool(3, s2) plus a strided 1x1 conv shortcut."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=2, bias=False), nn.BatchNorm2d(out_ch))
        self.body = nn.Sequential(
            SeparableConv2d(in_ch, out_ch), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            SeparableConv2d(out_ch, out_ch), nn.BatchNorm2d(out_ch),
            nn.MaxPool2d(3, stride=2, padding=1),
        )

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.body(x) + self.shortcut(x)


class MiniXception(nn.Module):
    """Two 3x3 base convs, residual separable modules, a conv to one map per class, global average pooling."""

    def __init__(self, *, num_classes: int, in_chans: int, base: int = 8, widths: tuple[int, ...] = (16, 32, 64, 128),
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_bn_relu(in_chans, base), _conv_bn_relu(base, base))
        chans = (base, *widths)
        self.blocks = nn.Sequential(*[XceptionModule(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True)])
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(widths[-1], num_classes, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.pool(self.classifier(self.dropout(self.blocks(self.stem(x))))).flatten(1)


@register_model(family="xception", cam_layer="blocks.3", first_conv="stem.0.0", classifier="classifier",
                channels_last_max_size=56)  # torch 2.14's channels_last backward: 24-57 px train; 60, 64-96 px crash
def mini_xception(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
                  dropout: float = 0.0) -> nn.Module:
    """mini-Xception (Arriaga et al. 2017): 8-filter base, 4 residual separable modules 16-128, conv + GAP head."""
    return MiniXception(num_classes=num_classes, in_chans=in_chans, dropout=dropout)
