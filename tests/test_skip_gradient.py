"""Skip-gradient changes the backward pass of dlib's ResNet and FaceNet only: same descriptors, other gradients."""

import pytest
import torch

from advpriv.faces.dlib_resnet import DlibResNet
from advpriv.faces.facenet import FaceNet
from advpriv.faces.skip_gradient import set_skip_gradient


def _descriptor_and_gradient(model: torch.nn.Module, chips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    chips = chips.clone().requires_grad_(True)
    out = model(chips)
    (gradient,) = torch.autograd.grad(out.square().sum(), chips)
    return out.detach(), gradient


@pytest.mark.parametrize("network, size, blocks", [(DlibResNet, 150, 14), (FaceNet, 160, 21)])
def test_only_the_gradient_changes(network: type, size: int, blocks: int) -> None:
    torch.manual_seed(0)
    model = network().eval().requires_grad_(False)
    chips = torch.rand(2, 3, size, size)
    plain_out, plain_grad = _descriptor_and_gradient(model, chips)

    assert set_skip_gradient(model, 0.5) == blocks
    skip_out, skip_grad = _descriptor_and_gradient(model, chips)
    assert torch.equal(plain_out, skip_out)
    assert torch.isfinite(skip_grad).all()
    assert not torch.allclose(plain_grad, skip_grad, rtol=0.05)

    set_skip_gradient(model, 1.0)
    assert torch.equal(_descriptor_and_gradient(model, chips)[1], plain_grad)


def test_factor_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        set_skip_gradient(DlibResNet(), 0.0)
