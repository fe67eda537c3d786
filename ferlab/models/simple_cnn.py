"""Small plain CNNs: the baseline models of most FER2013 tutorials."""

from __future__ import annotations

from torch import nn

from ferlab.models._registry import register_model

__all__ = ["simple_cnn", "sequential_small"]


def _conv_pool(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class PlainCNN(nn.Module):
    """Conv+pool blocks, then flatten -> dense -> dropout -> class logits."""

    def __init__(self, widths: tuple[int, ...], *, num_classes: int, in_chans: int, input_size: int = 48,
                 hidden: int = 128, dropout: float = 0.5) -> None:
        super().__init__()
        chans = (in_chans, *widths)
        self.features = nn.Sequential(*[_conv_pool(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True)])
        side = input_size // 2 ** len(widths)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(widths[-1] * side * side, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.classifier(self.head(self.features(x)))


@register_model(family="simple_cnn", cam_layer="features.2.0", first_conv="features.0.0", classifier="classifier")
def simple_cnn(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
               dropout: float = 0.5) -> nn.Module:
    """3 conv blocks (32/64/128, each conv+pool), dense 128, dropout: the common FER2013 baseline."""
    return PlainCNN((32, 64, 128), num_classes=num_classes, in_chans=in_chans, input_size=input_size, dropout=dropout)


@register_model(family="simple_cnn", cam_layer="features.1.0", first_conv="features.0.0", classifier="classifier")
def sequential_small(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None,
                     input_size: int = 48, dropout: float = 0.5) -> nn.Module:
    """2 conv+pool blocks (32/64), dense 128, dropout: the small model of 2- and 4-class studies."""
    return PlainCNN((32, 64), num_classes=num_classes, in_chans=in_chans, input_size=input_size, dropout=dropout)
