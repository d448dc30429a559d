"""DeepObfuscator networks (Li et al., IoTDI 2021): encoder E, cloud classifier C / attribute adversary P, decoder R.

All sizes scale with `Widths`, whose defaults are the paper's VGG16-BN widths. Inputs are float RGB in [0,1].

Example:
    >>> w = Widths(width=0.125, fc=64)
    >>> E, C = Encoder(w), Classifier(w, (32, 32))
    >>> C(E(torch.rand(2, 3, 32, 32))).shape
    torch.Size([2])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

VGG16_CHANNELS = (64, 128, 256, 512, 512)
"""Output channels of the five VGG16 blocks."""


@dataclass(frozen=True)
class Widths:
    """Network sizes: `width` multiplies every VGG channel count; `fc` is the hidden size of the two FC layers."""

    width: float = 1.0
    fc: int = 4096

    def channels(self) -> tuple[int, ...]:
        """Channels of the five VGG blocks after the width multiplier (at least 1 each)."""
        return tuple(max(1, round(c * self.width)) for c in VGG16_CHANNELS)

    @property
    def feature_channels(self) -> int:
        """Channels of the transmitted feature map (the encoder's output)."""
        return self.channels()[1]


def _vgg_block(c_in: int, c_out: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        conv = nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1)
        layers += [conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return layers + [nn.MaxPool2d(2)]


class Encoder(nn.Module):
    """The device-side encoder E: VGG16-BN blocks 1–2, (N,3,H,W) → (N,c2,H//4,W//4). No pooling indices are kept."""

    def __init__(self, widths: Widths = Widths()) -> None:
        super().__init__()
        c1, c2 = widths.channels()[:2]
        self.features = nn.Sequential(*_vgg_block(3, c1, 2), *_vgg_block(c1, c2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def pooled_size(image_size: tuple[int, int], pools: int) -> tuple[int, int]:
    """Spatial size after `pools` 2×2 max-pools (floor), e.g. (109, 89) after 5 pools is (3, 2)."""
    h, w = image_size
    for _ in range(pools):
        h, w = h // 2, w // 2
    return h, w


class Classifier(nn.Module):
    """Cloud classifier C (and attribute adversary P): VGG16-BN blocks 3–5 then FC→FC→1; returns logits (N,).

    The first FC's input size follows `image_size` (H, W) of the images given to the encoder. `in_channels`
    (default: the feature channels of `widths`) lets an attacker of another width read a given encoder's features.
    """

    def __init__(self, widths: Widths, image_size: tuple[int, int], dropout: float = 0.5,
                 in_channels: int | None = None) -> None:
        super().__init__()
        _, c2, c3, c4, c5 = widths.channels()
        c2 = in_channels or c2
        h, w = pooled_size(image_size, 5)
        if h < 1 or w < 1:
            raise ValueError(f"images of {image_size[0]}×{image_size[1]} are too small: "
                             "the classifier needs at least 32×32.")
        self.features = nn.Sequential(*_vgg_block(c2, c3, 3), *_vgg_block(c3, c4, 3), *_vgg_block(c4, c5, 3))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c5 * h * w, widths.fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(widths.fc, widths.fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(widths.fc, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(z)).squeeze(1)


def clamp01(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0,1] in the forward pass, identity gradient in the backward pass (so no pixel stops learning)."""
    return x + (x.clamp(0, 1) - x).detach()


class Decoder(nn.Module):
    """Reconstruction adversary R: features (N,c2,h,w) → images (N,3,H,W) clamped to [0,1].

    Bilinear ×2, [ReLU,BN,ConvT c2→c2, ReLU,BN,ConvT c2→c1], bilinear to the image size, [ReLU,BN,ConvT c1→c1,
    ReLU,BN,ConvT c1→3], all transposed convolutions 3×3 with stride 1. `in_channels` (default c2) lets a decoder
    of another width read a given encoder's features: its first BN and ConvT then take `in_channels`.
    """

    def __init__(self, widths: Widths, image_size: tuple[int, int], in_channels: int | None = None) -> None:
        super().__init__()
        c1, c2 = widths.channels()[:2]
        c_in = in_channels or c2
        self.image_size = tuple(image_size)

        def stage(c_in: int, c_mid: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.ReLU(), nn.BatchNorm2d(c_in), nn.ConvTranspose2d(c_in, c_mid, 3, padding=1),
                nn.ReLU(), nn.BatchNorm2d(c_mid), nn.ConvTranspose2d(c_mid, c_out, 3, padding=1),
            )

        self.stage1, self.stage2 = stage(c_in, c2, c1), stage(c1, c1, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False)
        z = F.interpolate(self.stage1(z), size=self.image_size, mode="bilinear", align_corners=False)
        return clamp01(self.stage2(z))
