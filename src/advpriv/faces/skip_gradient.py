"""Skip-gradient: less of the gradient through residual branches, all of it through the skip connections.

Wu et al., *Skip Connections Matter: On the Transferability of Adversarial Examples Generated with ResNets* (ICLR
2020): backpropagating through a ResNet with the residual branches' gradient scaled by γ < 1 leans on the
low-level features that the skip connections carry, which other networks share, and the change found transfers
better to models never attacked. Only the backward pass changes: the descriptors, and so every success check and
every verdict, are the model's own.

Example:
    >>> branch = torch.tensor([2.0], requires_grad=True)
    >>> decay_gradient(branch * 3, 0.5).backward(); branch.grad
    tensor([1.5000])
    >>> decay_gradient(branch, 0.5) is not branch, torch.equal(decay_gradient(branch, 0.5), branch)
    (True, True)
"""

from __future__ import annotations

import torch
from torch import nn


class _Decay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, gamma: float) -> torch.Tensor:  # type: ignore[override]
        ctx.gamma = gamma
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.gamma, None


def decay_gradient(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """`x` unchanged, its gradient scaled by `gamma` on the way back (`x` itself when gamma is 1)."""
    return x if gamma == 1 else _Decay.apply(x, gamma)


def set_skip_gradient(model: nn.Module, gamma: float) -> int:
    """Scale the gradient through every residual branch of `model` by `gamma` (1 restores plain gradients), for
    the modules that support it (those with a `skip_gradient` attribute: dlib's ResNet and FaceNet blocks); returns
    how many there were.

    >>> from advpriv.faces.dlib_resnet import DlibResNet
    >>> set_skip_gradient(DlibResNet(), 0.5)
    14
    """
    if not 0 < gamma <= 1:
        raise ValueError(f"the skip-gradient factor must be in (0, 1], got {gamma}")
    blocks = [m for m in model.modules() if hasattr(m, "skip_gradient")]
    for block in blocks:
        block.skip_gradient = gamma
    return len(blocks)
