"""Residual nets sized for 48x48 faces: a small one written here and torchvision's ResNet-18 with a FER stem."""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock as TorchvisionBasicBlock
from torchvision.models.resnet import ResNet

from ferlab.models._registry import register_model

__all__ = ["simple_resnet", "resnet18_fer", "BasicBlock", "residual_stage", "init_conv_bn"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or strided 1x1 conv-BN) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_ch))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.relu(self.body(x) + self.shortcut(x))


def residual_stage(in_ch: int, out_ch: int, blocks: int, stride: int) -> list[nn.Module]:
    """`blocks` BasicBlocks; the first one changes width/resolution."""
    return [BasicBlock(in_ch if i == 0 else out_ch, out_ch, stride if i == 0 else 1) for i in range(blocks)]


def init_conv_bn(model: nn.Module) -> None:
    """Kaiming init for convs; BN starts as identity."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SimpleResNet(nn.Module):
    """3x3 stem at full resolution, then one strided residual stage per width, global average pooling, dropout."""

    def __init__(self, *, num_classes: int, in_chans: int, stem: int = 32, widths: tuple[int, ...] = (64, 128, 256),
                 blocks: int = 1, dropout: float = 0.3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem),
                                  nn.ReLU(inplace=True))
        chans = (stem, *widths)
        self.stages = nn.Sequential(*[nn.Sequential(*residual_stage(a, b, blocks, 2))
                                      for a, b in zip(chans[:-1], chans[1:], strict=True)])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.classifier = nn.Linear(widths[-1], num_classes)
        init_conv_bn(self)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.classifier(self.pool(self.stages(self.stem(x))))


@register_model(family="resnet", cam_layer="stages.2", first_conv="stem.0", classifier="classifier")
def simple_resnet(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
                  blocks: int = 1, dropout: float = 0.3) -> nn.Module:
    """Small residual net: 3x3 stem (32), residual stages 64/128/256 at 24/12/6 px, GAP, dropout."""
    return SimpleResNet(num_classes=num_classes, in_chans=in_chans, blocks=blocks, dropout=dropout)


@register_model(family="resnet", cam_layer="layer4", first_conv="conv1", classifier="fc")
def resnet18_fer(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
                 stem_stride: int = 1, dropout: float = 0.0) -> nn.Module:
    """torchvision ResNet-18 for 48x48: 3x3 stem (stride 1), no max-pool, so layer4 still sees 6x6 px."""
    # The ImageNet stem (7x7 stride 2 + max-pool) would shrink 48 px to 2x2 by layer4. The CIFAR-style stem keeps
    # the resolution; `stem_stride=2` is a 4x cheaper variant (layer4 at 3x3 px).
    model = ResNet(TorchvisionBasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_chans, 64, 3, stride=stem_stride, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    if dropout:
        model.fc = nn.Sequential(nn.Dropout(dropout), model.fc)
    return model
