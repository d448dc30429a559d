"""Attackers of another family than the encoder's VGG: a ResNet-18-style classifier and an upsampling decoder
trained with an SSIM loss (as InferenceBenchmark's "supervised decoder" attacker is).

Both read the frozen features (N,C,h,w) an encoder sends, whatever their shape.

Example:
    >>> ResNetAttacker(8)(torch.rand(2, 8, 1, 1)).shape
    torch.Size([2])
    >>> UpsamplingDecoder((8, 1, 1), (64, 52))(torch.rand(2, 8, 1, 1)).shape
    torch.Size([2, 3, 64, 52])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from advpriv.obfuscate.networks import clamp01
from advpriv.quality import ssim


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3×3 convolutions with batch norm and a shortcut (1×1 when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNetAttacker(nn.Module):
    """ResNet-18's layout (a stem, then four stages of two basic blocks, global pooling, a linear head) at `width`
    base channels, on feature maps of `in_channels`; returns one logit per image (N,). A stage halves the map only
    while it is at least 2 pixels on each side, so pooled (1×1) features pass through all 18 layers too."""

    def __init__(self, in_channels: int, width: int = 32, min_side: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        widths = [width * 2**i for i in range(4)]
        self.stages = nn.ModuleList(
            nn.ModuleList([BasicBlock(c_in, c_out, 1), BasicBlock(c_out, c_out, 1)])
            for c_in, c_out in zip([width, *widths[:-1]], widths))
        self.head = nn.Linear(widths[-1], 1)
        self.min_side = min_side

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.stem(z)
        for i, (first, second) in enumerate(self.stages):
            if i and min(x.shape[-2:]) >= 2 * max(self.min_side, 1):
                x = F.max_pool2d(x, 2)
            x = second(first(x))
        return self.head(x.mean((2, 3))).squeeze(1)


class UpsamplingDecoder(nn.Module):
    """Features → image: a linear layer (pooled features) or a 1×1 convolution (spatial ones) onto a map at 1/8 of
    the image, three [×2 upsampling, 3×3 convolution, batch norm, ReLU] stages, a 3×3 convolution to RGB, resized
    to the image and clamped to [0,1]. Train it with `ssim_loss`."""

    def __init__(self, feature_shape: tuple[int, int, int], image_size: tuple[int, int], width: int = 64) -> None:
        super().__init__()
        c, h, w = feature_shape
        self.image_size = tuple(image_size)
        self.grid = (width, max(1, image_size[0] // 8), max(1, image_size[1] // 8))
        self.pooled = min(h, w) == 1
        self.enter = (nn.Linear(c * h * w, math.prod(self.grid)) if self.pooled else nn.Conv2d(c, width, 1))
        layers: list[nn.Module] = []
        c_in = width
        for i in range(3):
            c_out = max(16, width >> (i + 1))
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.body = nn.Sequential(*layers, nn.Conv2d(c_in, 3, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.pooled:
            x = self.enter(z.flatten(1)).view(-1, *self.grid)
        else:
            x = self.enter(F.interpolate(z, size=self.grid[1:], mode="bilinear", align_corners=False))
        x = F.interpolate(self.body(x), size=self.image_size, mode="bilinear", align_corners=False)
        return clamp01(torch.sigmoid(x) * 1.2 - 0.1)


def ssim_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 − SSIM."""
    return (1 - ssim(x_hat, x)).mean()
