"""DeepObfuscator networks (Li et al., IoTDI 2021): encoder E, cloud classifier C / attribute adversary P, decoder R.

All sizes scale with `Widths`, whose defaults are the paper's VGG16-BN widths. `SplitPoint` says where the phone
stops (after which VGG block) and what it sends: optionally a narrow learned bottleneck, pooled, with noise.
Inputs are float RGB in [0,1].

Example:
    >>> w, cut = Widths(width=0.125, fc=64), SplitPoint(block=4, bottleneck=8, pool=(1, 1), noise=0.5)
    >>> E, C = Encoder(w, cut), Classifier(w, (32, 32), split=cut)
    >>> E(torch.rand(2, 3, 32, 32)).shape, C(E(torch.rand(2, 3, 32, 32))).shape
    (torch.Size([2, 8, 1, 1]), torch.Size([2]))
"""

from __future__ import annotations

from dataclasses import dataclass

import math

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


VGG16_CONVS = (2, 2, 3, 3, 3)
"""Convolutions in each of the five VGG16 blocks."""


def pooled_size(image_size: tuple[int, int], pools: int) -> tuple[int, int]:
    """Spatial size after `pools` 2×2 max-pools (floor), e.g. (109, 89) after 5 pools is (3, 2)."""
    h, w = image_size
    for _ in range(pools):
        h, w = h // 2, w // 2
    return h, w


@dataclass(frozen=True)
class SplitPoint:
    """Where the device stops and what it sends.

    block: VGG blocks run on the device (1–5; the paper: 2). bottleneck: channels of a learned 1×1 convolution
    after that block (None: send the block's output). pool: average-pool the bottleneck's output to (h, w), e.g.
    (1, 1) for a vector of `bottleneck` numbers (None: keep the resolution). A bottleneck's output is standardised
    (batch norm without scale), so `noise`, the std of Gaussian noise added in training and inference alike, is
    relative to the features. learn_noise: the noise std is a learned per-channel parameter starting at `noise`.
    """

    block: int = 2
    bottleneck: int | None = None
    pool: tuple[int, int] | None = None
    noise: float = 0.0
    learn_noise: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.block <= 5:
            raise ValueError(f"split block {self.block} does not exist; VGG16 has blocks 1 to 5.")
        if self.bottleneck is None and (self.pool is not None or self.noise > 0 or self.learn_noise):
            raise ValueError("pooling and noise act on the bottleneck; set its channels too (e.g. bottleneck=8).")
        if self.noise < 0 or (self.learn_noise and self.noise == 0):
            raise ValueError(f"noise std {self.noise} is not usable; give a positive std (0: no noise, and then it "
                             "cannot be learned).")

    def feature_shape(self, widths: Widths, image_size: tuple[int, int]) -> tuple[int, int, int]:
        """(C, h, w) of the features sent for images of `image_size`."""
        channels = self.bottleneck or widths.channels()[self.block - 1]
        return (channels, *(self.pool or pooled_size(image_size, self.block)))


def _vgg_block(c_in: int, c_out: int, convs: int, pool: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        conv = nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1)
        layers += [conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return layers + [nn.MaxPool2d(2) if pool else nn.Identity()]


class Bottleneck(nn.Module):
    """A 1×1 convolution to few channels, optionally average-pooled, standardised, then noised (see `SplitPoint`)."""

    def __init__(self, c_in: int, split: SplitPoint) -> None:
        super().__init__()
        self.project = nn.Conv2d(c_in, split.bottleneck, 1)
        self.pool = nn.AdaptiveAvgPool2d(split.pool) if split.pool else nn.Identity()
        self.norm = nn.BatchNorm2d(split.bottleneck, affine=False)
        log_std = torch.full((split.bottleneck, 1, 1), math.log(split.noise)) if split.noise > 0 else None
        if split.learn_noise:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    def clean(self, f: torch.Tensor) -> torch.Tensor:
        """The standardised features before noise."""
        return self.norm(self.pool(self.project(f)))

    def add_noise(self, z: torch.Tensor) -> torch.Tensor:
        """z plus fresh Gaussian noise of the (learned or fixed) std; z itself without noise."""
        return z if self.log_std is None else z + self.log_std.exp() * torch.randn_like(z)

    def rate(self, z: torch.Tensor) -> torch.Tensor:
        """KL(N(z, σ²) ‖ N(0, 1)) summed over the features, averaged over the batch: a bound on the bits sent."""
        var = (2 * self.log_std).exp()
        return 0.5 * (z.pow(2) + var - 1 - 2 * self.log_std).flatten(1).sum(1).mean()


class Encoder(nn.Module):
    """The device-side encoder E: VGG16-BN blocks 1–`split.block`, then the optional bottleneck.

    With the paper's split, (N,3,H,W) → (N,c2,H//4,W//4). No pooling indices are kept.
    """

    def __init__(self, widths: Widths = Widths(), split: SplitPoint = SplitPoint()) -> None:
        super().__init__()
        channels = (3, *widths.channels())
        self.features = nn.Sequential(*(layer for b in range(split.block)
                                        for layer in _vgg_block(channels[b], channels[b + 1], VGG16_CONVS[b])))
        self.bottleneck = Bottleneck(channels[split.block], split) if split.bottleneck else None

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """The features before noise (the same as `forward` without a noisy bottleneck)."""
        f = self.features(x)
        return self.bottleneck.clean(f) if self.bottleneck else f

    def add_noise(self, z: torch.Tensor) -> torch.Tensor:
        """Clean features plus the bottleneck's noise (none without a bottleneck)."""
        return self.bottleneck.add_noise(z) if self.bottleneck else z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add_noise(self.clean(x))


class Classifier(nn.Module):
    """Cloud classifier C (and attribute adversary P): the VGG16-BN blocks after the split (the paper: 3–5), then
    FC→FC→1; returns logits (N,). A block's max-pool is skipped once the map is 1 pixel high or wide.

    `image_size` (H, W) of the images given to the encoder and `split` fix the input's size. `in_channels`
    (default: the split's feature channels at `widths`) lets an attacker of another width read a given encoder's
    features. `outputs`: one logit per task; with more than one, it returns (N, outputs).
    """

    def __init__(self, widths: Widths, image_size: tuple[int, int], dropout: float = 0.5,
                 in_channels: int | None = None, split: SplitPoint = SplitPoint(), outputs: int = 1) -> None:
        super().__init__()
        c_in, h, w = split.feature_shape(widths, image_size)
        if h < 1 or w < 1:
            raise ValueError(f"images of {image_size[0]}×{image_size[1]} are too small: "
                             "the classifier needs at least 32×32.")
        channels = (in_channels or c_in, *widths.channels()[split.block:])
        layers: list[nn.Module] = []
        for b in range(split.block, 5):
            pool = min(h, w) >= 2
            layers += _vgg_block(channels[b - split.block], channels[b - split.block + 1], VGG16_CONVS[b], pool)
            h, w = (h // 2, w // 2) if pool else (h, w)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels[-1] * h * w, widths.fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(widths.fc, widths.fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(widths.fc, outputs),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(z))
        return logits.squeeze(1) if logits.shape[1] == 1 else logits


def clamp01(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0,1] in the forward pass, identity gradient in the backward pass (so no pixel stops learning)."""
    return x + (x.clamp(0, 1) - x).detach()


class Decoder(nn.Module):
    """Reconstruction adversary R: features (N,C,h,w) → images (N,3,H,W) clamped to [0,1].

    Bilinear to (H//2, W//2) (with the paper's split: ×2), [ReLU,BN,ConvT C→c2, ReLU,BN,ConvT c2→c1], bilinear to
    the image size, [ReLU,BN,ConvT c1→c1, ReLU,BN,ConvT c1→3], all transposed convolutions 3×3 with stride 1.
    Features of a deeper split than the paper's, or pooled, first go through a linear layer to a c2×(H//4)×(W//4)
    map (then C = c2): upsampling a small map bilinearly leaves the decoder no way to place a face's parts. `in_channels` (default: the split's
    feature channels at `widths`) lets a decoder of another width read a given encoder's features.
    """

    def __init__(self, widths: Widths, image_size: tuple[int, int], in_channels: int | None = None,
                 split: SplitPoint = SplitPoint()) -> None:
        super().__init__()
        c1, c2 = widths.channels()[:2]
        c_in, h, w = split.feature_shape(widths, image_size)
        c_in = in_channels or c_in
        self.image_size = tuple(image_size)
        self.grid = (c2, *pooled_size(image_size, 2))
        expand = split.pool is not None or split.block > 2
        self.expand = nn.Linear(c_in * h * w, math.prod(self.grid)) if expand else None
        c_in = c2 if expand else c_in

        def stage(c_in: int, c_mid: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.ReLU(), nn.BatchNorm2d(c_in), nn.ConvTranspose2d(c_in, c_mid, 3, padding=1),
                nn.ReLU(), nn.BatchNorm2d(c_mid), nn.ConvTranspose2d(c_mid, c_out, 3, padding=1),
            )

        self.stage1, self.stage2 = stage(c_in, c2, c1), stage(c1, c1, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.expand is not None:
            z = self.expand(z.flatten(1)).view(-1, *self.grid)
        half = (self.image_size[0] // 2, self.image_size[1] // 2)
        z = F.interpolate(z, size=half, mode="bilinear", align_corners=False)
        z = F.interpolate(self.stage1(z), size=self.image_size, mode="bilinear", align_corners=False)
        return clamp01(self.stage2(z))
