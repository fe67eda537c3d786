"""ImageNet backbones for transfer learning (torchvision, timm), resized inside the model and given a FER head.

Every model here takes the same 48x48 faces as the rest of the zoo and upsamples them to `resize` px inside
`forward` (bilinear): at 48 px a stride-32 backbone ends on a 1x1 map. The default 64-96 px keeps CPU cost
in the 0.1-2.5 GFLOP range instead of the 4-31 GFLOP of 224 px. `in_chans=1` (default) adapts the first conv
(RGB weights summed, the exact response to a gray image repeated 3x); `in_chans=3` keeps it and
`ferlab.models.preprocess` repeats the gray channel. Weights: `pretrained="imagenet"` downloads (network),
a local file goes through `ferlab.models.weights.load_weights` (library `.pth` files load as they are).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ferlab.errors import ModelError
from ferlab.models._registry import register_model
from ferlab.models.weights import adapt_first_conv_weight

__all__ = ["resnet50", "resnet50v2", "vgg16", "efficientnet_b0", "TransferNet", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TransferNet(nn.Module):
    """A library network (`body`, its own state-dict layout) behind a parameter-free bilinear resize to `resize` px."""

    weights_prefix = "body."  # library weight files lack it; load_weights adds it

    def __init__(self, body: nn.Module, resize: int) -> None:
        super().__init__()
        self.body = body
        self.resize = resize

    def forward(self, x):  # noqa: ANN001, ANN201
        if self.resize and tuple(x.shape[-2:]) != (self.resize, self.resize):
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return self.body(x)


def _download(fetch: Callable[[], nn.Module | dict], what: str):  # noqa: ANN202
    """Run a library download; offline failures become one-line ModelErrors."""
    try:
        return fetch()
    except OSError as err:  # URLError, HTTP/hub errors, missing cache entries
        raise ModelError(f"cannot download {what} (offline?): {str(err).splitlines()[0] if str(err) else err!r}; "
                         "pass a local weights file as pretrained instead") from None


def _set_in_chans(parent: nn.Module, attr: str, in_chans: int) -> None:
    """Replace the 3-channel conv `parent.<attr>` by an `in_chans` one, adapting its (possibly pretrained) weights."""
    conv: nn.Conv2d = getattr(parent, attr)
    if in_chans == conv.in_channels:
        return
    new = nn.Conv2d(in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(adapt_first_conv_weight(conv.weight, in_chans))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    setattr(parent, attr, new)


def _head(features: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))


@register_model(family="backbone", cam_layer="body.layer4", first_conv="body.conv1", classifier="body.fc",
                mean=IMAGENET_MEAN, std=IMAGENET_STD, pretrained_source="torchvision:ResNet50_Weights.IMAGENET1K_V2")
def resnet50(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
             resize: int = 64, dropout: float = 0.2) -> nn.Module:
    """torchvision ResNet-50 (ImageNet-ready), input upsampled to 64 px, dropout + linear head."""
    from torchvision.models import ResNet50_Weights
    from torchvision.models import resnet50 as build

    weights = ResNet50_Weights.IMAGENET1K_V2 if pretrained else None
    body = _download(lambda: build(weights=weights), "torchvision ResNet-50 weights")
    _set_in_chans(body, "conv1", in_chans)
    body.fc = _head(body.fc.in_features, num_classes, dropout)
    return TransferNet(body, resize)


@register_model(family="backbone", cam_layer="body.stages.3", first_conv="body.stem.conv", classifier="body.head",
                mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), pretrained_source="timm:resnetv2_50.a1h_in1k")
def resnet50v2(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
               resize: int = 64, dropout: float = 0.2) -> nn.Module:
    """timm pre-activation ResNet-50 v2 (`resnetv2_50`), input upsampled to 64 px; mean/std 0.5 as timm's weights."""
    import timm

    body = _download(lambda: timm.create_model("resnetv2_50", pretrained=bool(pretrained), in_chans=in_chans,
                                               num_classes=num_classes, drop_rate=dropout), "timm resnetv2_50 weights")
    return TransferNet(body, resize)


class _VGG16Body(nn.Module):
    """torchvision's VGG-16 `features` (same key names) with a global-pool head instead of the 120 M-param FC stack."""

    def __init__(self, num_classes: int, dropout: float, hidden: int) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.features = make_layers(cfgs["D"], batch_norm=False)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(512, hidden), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.classifier(self.avgpool(self.features(x)))


@register_model(family="backbone", cam_layer="body.features.28", first_conv="body.features.0",
                classifier="body.classifier", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                pretrained_source="torchvision:VGG16_Weights.IMAGENET1K_V1")
def vgg16(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
          resize: int = 64, dropout: float = 0.5, hidden: int = 256) -> nn.Module:
    """torchvision VGG-16 conv layers (ImageNet-ready), input upsampled to 64 px, GAP + dense 256 head."""
    body = _VGG16Body(num_classes, dropout, hidden)
    if pretrained:
        from torchvision.models import VGG16_Weights

        state = _download(lambda: VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True), "torchvision VGG-16")
        body.features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()
                                       if k.startswith("features.")})
    _set_in_chans(body.features, "0", in_chans)
    return TransferNet(body, resize)


@register_model(family="backbone", cam_layer="body.features.8", first_conv="body.features.0.0",
                classifier="body.classifier", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                pretrained_source="torchvision:EfficientNet_B0_Weights.IMAGENET1K_V1")
def efficientnet_b0(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
                    resize: int = 96, dropout: float = 0.2) -> nn.Module:
    """torchvision EfficientNet-B0 (ImageNet-ready), input upsampled to 96 px, dropout + linear head."""
    from torchvision.models import EfficientNet_B0_Weights
    from torchvision.models import efficientnet_b0 as build

    weights = EfficientNet_B0_Weights.IMAGENET1K_V1 if pretrained else None
    body = _download(lambda: build(weights=weights), "torchvision EfficientNet-B0 weights")
    _set_in_chans(body.features[0], "0", in_chans)
    body.classifier = _head(body.classifier[1].in_features, num_classes, dropout)
    return TransferNet(body, resize)
