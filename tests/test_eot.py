"""EOT transformations against Pillow, Robust objectives, MND's quorum and fallback, strengths, relative face gaps."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from advpriv.faces.detect import Face
from advpriv.faces.embedders import FaceEmbedder
from advpriv.faces.objectives import Dodge
from advpriv.images import load_image, to_uint8
from advpriv.protect.eot import EOT, EOTConfig, Robust, jpeg, resize
from advpriv.protect.mnd import MNDConfig, mnd
from advpriv.protect.strength import STRENGTHS, strength_options


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(data.astronaut()[:128, 160:288].astype(np.float32) / 255).permute(2, 0, 1)


def _pillow(image: torch.Tensor, **save) -> torch.Tensor:
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, **save)
    return load_image(io.BytesIO(buf.getvalue()))


def test_differentiable_jpeg_is_close_to_pillows(photo: torch.Tensor) -> None:
    ours = jpeg(photo[None], 85)[0]
    pillow = _pillow(photo, format="JPEG", quality=85)
    codec_error = (pillow - photo).abs().mean()
    assert (ours - pillow).abs().mean() < 0.5 * codec_error  # nearer Pillow's decode than the original is


def test_resize_is_close_to_pillows(photo: torch.Tensor) -> None:
    for kernel, pil_kernel in (("bilinear", Image.Resampling.BILINEAR), ("bicubic", Image.Resampling.BICUBIC)):
        ours = resize(photo[None], (64, 64), kernel)[0]
        pillow = Image.fromarray(to_uint8(photo)).resize((64, 64), pil_kernel)
        theirs = torch.from_numpy(np.asarray(pillow, dtype=np.float32) / 255).permute(2, 0, 1)
        assert (ours - theirs).abs().mean() * 255 < 1.5, kernel
        assert torch.equal(ours, ours.mul(255).round().div(255))  # on 8-bit levels


def test_eot_draws_repeat_with_the_seed(photo: torch.Tensor) -> None:
    config = EOTConfig(scale_p=1.0, jpeg_p=1.0, blur_p=1.0, shift=1.0)
    a, b = EOT(config, seed=3), EOT(config, seed=3)
    assert torch.equal(a(photo[None]), b(photo[None]))
    assert not torch.equal(a(photo[None]), a(photo[None]))


class _Threshold:
    """Succeeds when the mean pixel is above 0.5; its loss pushes the mean up."""

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = images.mean((1, 2, 3))
        return (0.55 - mean).clamp(min=0) * 100, mean > 0.5


def test_robust_needs_both_the_image_and_the_draw() -> None:
    robust = Robust(_Threshold(), lambda x: x * 0.5)  # a transformation that always undoes the goal
    loss, success = robust(torch.full((1, 3, 4, 4), 0.6))
    assert not success[0] and loss[0] > 0
    robust.eot = lambda x: x
    _, success = robust(torch.full((1, 3, 4, 4), 0.6))
    assert success[0]


def test_robust_selects_images_only_when_its_objective_can() -> None:
    assert Robust(_Threshold(), lambda x: x).select is None
    x = torch.tensor([230 / 255, 0.0])[:, None, None, None].expand(2, 3, 4, 4)  # settled at once; out of reach
    result = mnd(x, Robust(_Threshold(), lambda x: x), MNDConfig(steps=30))  # the whole batch runs on
    assert result.success.tolist() == [True, False] and result.steps == 30 and torch.equal(result.images[0], x[0])


def test_mnd_returns_its_last_candidate_when_it_never_succeeds() -> None:
    never = lambda x: ((1 - x.mean((1, 2, 3))) * 1e4, torch.zeros(len(x), dtype=torch.bool))  # noqa: E731
    x = torch.full((1, 3, 8, 8), 0.3)
    result = mnd(x, never, MNDConfig(steps=20, lr=1e-2))
    assert not result.success[0]
    assert result.images.mean() > x.mean() + 0.005  # moved towards the goal, not handed back unprotected


def test_mnd_quorum_keeps_lambda_down_for_a_goal_reached_by_chance() -> None:
    generator = torch.Generator().manual_seed(0)

    def lucky(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hit = torch.rand(len(x), generator=generator) < 0.2  # one step in five, whatever the image
        return (0.55 - x.mean((1, 2, 3))).clamp(min=0) * 100, hit

    x = torch.full((1, 3, 8, 8), 0.3)
    anyone = mnd(x, lucky, MNDConfig(steps=40, stop_tol=-1))
    quorum = mnd(x, lucky, MNDConfig(steps=40, stop_tol=-1, quorum=0.5))
    assert quorum.lam[0] < anyone.lam[0]


def test_strength_levels_are_ordered() -> None:
    levels = [strength_options(name, "dlib") for name in ("low", "medium", "high")]
    assert [o["margin"] for o in levels] == sorted(o["margin"] for o in levels)
    assert levels[0]["eot"] is None and levels[1]["eot"] is not None and levels[2]["eot"] is not None
    assert levels[1]["config"].quorum > 0
    budgets = [o["visibility"] for o in levels]  # each level lets a face change more than the one below
    assert [b.min_ssim for b in budgets] == sorted((b.min_ssim for b in budgets), reverse=True)
    assert [b.max_ciede2000 for b in budgets] == sorted(b.max_ciede2000 for b in budgets)
    assert budgets[0].max_change < budgets[1].max_change < budgets[2].max_change
    classifier = strength_options("medium", "efficientnet-lite0")
    assert classifier["kappa"] == 1.0 and classifier["views"] == (70, 95) and "eot" not in classifier
    kappas = [strength_options(name, "efficientnet-lite0")["kappa"] for name in ("low", "medium", "high")]
    assert kappas == sorted(kappas) and strength_options("low", "efficientnet-lite0")["views"] is None
    with pytest.raises(ValueError, match="choose one of"):
        strength_options("max", "dlib")
    assert set(STRENGTHS) == {"low", "medium", "high"}


def test_dodge_weighs_models_by_their_own_threshold() -> None:
    """Two embedders with distances on scales 10× apart get the same loss for the same relative change."""
    base = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 150 * 150, 8))
    small = FaceEmbedder(base, threshold=0.1, metric="l2", name="small")
    large = FaceEmbedder(_Times(base, 10.0), threshold=1.0, metric="l2", name="large")
    clean = torch.rand(1, 3, 150, 150)
    faces = [[Face((0, 0, 149, 149), (), None)]]
    moved = (clean + 0.01 * torch.randn_like(clean)).clamp(0, 1)
    losses = [Dodge(clean, faces, [e], track_landmarks=False)(moved)[0] for e in (small, large)]
    assert torch.allclose(losses[0], losses[1], rtol=1e-2)  # up to Dodge's fixed nudge of the reference


class _Times(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, factor: float) -> None:
        super().__init__()
        self.model, self.factor = model, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.factor
