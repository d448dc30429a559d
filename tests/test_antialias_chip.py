"""The antialiased ArcFace chip: band-limited before sampling, so that the attack's change reaches every pixel."""

from __future__ import annotations

import torch

from advpriv.faces.align import arcface_chip, arcface_template


def _box_pixels(grad: torch.Tensor, left: int, top: int, side: int) -> torch.Tensor:
    return grad[0, :, top + 4 : top + side - 4, left + 4 : left + side - 4].abs().sum(0)


def test_a_shrinking_chip_reads_every_pixel_only_when_antialiased() -> None:
    torch.manual_seed(0)
    photo = torch.rand(1, 3, 400, 400)
    points = arcface_template(112) * 3 + 20  # three photo pixels per chip pixel
    reached = {}
    for antialias in (False, True):
        x = photo.clone().requires_grad_()
        arcface_chip(x, points, 112, antialias).sum().backward()
        reached[antialias] = float((_box_pixels(x.grad, 20, 20, 336) > 0).float().mean())
    assert reached[False] < 0.5  # bilinear samples touch four pixels around each of 112² points
    assert reached[True] > 0.99


def test_antialias_changes_nothing_when_the_chip_does_not_shrink() -> None:
    photo = torch.rand(2, 3, 130, 130)
    points = arcface_template(112) + 9
    assert torch.equal(arcface_chip(photo, points, 112, True), arcface_chip(photo, points, 112))


def test_a_smooth_photo_gives_the_same_chip_either_way() -> None:
    y, x = torch.meshgrid(torch.linspace(0, 1, 400), torch.linspace(0, 1, 400), indexing="ij")
    photo = torch.stack([x, y, (x + y) / 2])[None]
    points = arcface_template(112) * 3 + 20
    plain, smooth = arcface_chip(photo, points, 112), arcface_chip(photo, points, 112, True)
    assert (plain - smooth).abs().max() < 1e-3
