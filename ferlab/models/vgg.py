"""VGG-style plain conv stacks trained from scratch on 48x48 faces."""

from __future__ import annotations

from torch import nn

from ferlab.models._registry import register_model

__all__ = ["vgg_scratch", "vgg_fer", "VGGNet"]

# Conv widths per stage; every stage is followed by a 2x2 max-pool.
_VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
_VGG_FER_STAGES = ((64, 64), (128, 128), (256, 256), (512, 512))


def _stage(in_ch: int, widths: tuple[int, ...], batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for out_ch in widths:
        layers.append(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.ReLU(inplace=True))
        in_ch = out_ch
    return nn.Sequential(*layers)


class VGGNet(nn.Module):
    """`features` (stage, pool, stage, pool, ...) -> flatten -> `head` (dense layers with dropout) -> `classifier`.

    Stages sit at the even indices of `features`, so `features.<2k>` is stage k's map before its pool (Grad-CAM).
    """

    def __init__(self, stages: tuple[tuple[int, ...], ...], hidden: tuple[int, ...], *, num_classes: int,
                 in_chans: int, input_size: int, dropout: float, batch_norm: bool) -> None:
        super().__init__()
        chans = [in_chans] + [s[-1] for s in stages]
        blocks = [_stage(c, s, batch_norm) for c, s in zip(chans[:-1], stages, strict=True)]
        self.features = nn.Sequential(*[m for b in blocks for m in (b, nn.MaxPool2d(2))])
        side = max(input_size // 2 ** len(stages), 1)
        head: list[nn.Module] = [nn.Flatten()]
        width = chans[-1] * side * side
        for h in hidden:
            head += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        self.head = nn.Sequential(*head)
        self.classifier = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.classifier(self.head(self.features(x)))


@register_model(family="vgg", cam_layer="features.8", first_conv="features.0.0", classifier="classifier")
def vgg_scratch(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
                dropout: float = 0.5, batch_norm: bool = True) -> nn.Module:
    """VGG-16 conv stack (13 convs, 5 pools) from scratch, flatten/dense 512/dense 256 head with dropout."""
    # Batch norm on by default: 13 plain convs trained from scratch on 48x48 converge poorly without it.
    return VGGNet(_VGG16_STAGES, (512, 256), num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                  dropout=dropout, batch_norm=batch_norm)


@register_model(family="vgg", cam_layer="features.6", first_conv="features.0.0", classifier="classifier")
def vgg_fer(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
            dropout: float = 0.2) -> nn.Module:
    """4-stage VGG with batch norm (64-128-256-512, 2 convs each), FC 1024-1024: Khaireddin & Chen 2021."""
    return VGGNet(_VGG_FER_STAGES, (1024, 1024), num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                  dropout=dropout, batch_norm=True)
