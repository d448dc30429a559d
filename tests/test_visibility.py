"""`advpriv.visibility`: CIEDE2000 as the reference computes it, a colour term that sees what SSIM misses, face parts
from real landmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advpriv.quality import ssim
from advpriv.visibility import FaceParts, VisibilityLoss, ciede2000, face_visibility, lab


def test_ciede2000_equals_scikit_image() -> None:
    color = pytest.importorskip("skimage.color")
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 24, 24, generator=generator).unbind(0)
    y = (0.8 * x + 0.2 * y)  # near and far pairs, grey and saturated
    ours = ciede2000(lab(x[None]), lab(y[None]))[0].numpy()
    theirs = color.deltaE_ciede2000(color.rgb2lab(x.permute(1, 2, 0).numpy()), color.rgb2lab(y.permute(1, 2, 0).numpy()))
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)


def _textured() -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 96), indexing="ij")
    texture = 0.5 + 0.15 * torch.sin(40 * rows) * torch.cos(33 * cols)
    return torch.stack([texture * 0.9 + 0.05, texture * 0.6 + 0.1, texture * 0.5 + 0.1])[None]


def test_colour_term_is_zero_for_the_same_image_and_grows_for_a_hue_shift_that_ssim_barely_sees() -> None:
    x = _textured()
    shifted = lab(x)
    shifted[:, 1] += 6.0  # towards red, lightness kept: a skin tone turning pink
    import kornia

    y = kornia.color.lab_to_rgb(shifted).clamp(0, 1).mul(255).round().div(255)
    loss = VisibilityLoss(x, [FaceParts((0, 0, 95, 95))])
    assert float(loss.colour(x)) == 0.0
    assert float(ssim(x, y)) > 0.99, "the test needs a change SSIM barely sees"
    assert float(loss.colour(y)) > 25, "a hue shift of several just-noticeable differences must cost many steps"
    assert face_visibility(x[0], y[0], FaceParts((0, 0, 95, 95), (), (10, 10, 40, 40)))["ciede2000"] > 2.3


def test_the_same_change_costs_more_in_the_eyes_and_on_flat_skin() -> None:
    x = _textured()
    x[..., :, 48:] = 0.5  # right half flat
    loss = VisibilityLoss(x, [FaceParts((0, 0, 95, 95), eyes=((10, 10, 30, 30),))])

    def cost(top: int, left: int) -> float:
        y = x.clone()
        y[..., top : top + 8, left : left + 8] += 4 / 255
        return float(loss.colour(y))

    textured, flat, eye = cost(60, 10), cost(60, 70), cost(15, 15)
    assert flat > 1.5 * textured, (flat, textured)
    assert eye > 2 * textured, (eye, textured)


def test_face_parts_of_a_real_face_hold_its_eyes_and_lips() -> None:
    pytest.importorskip("dlib", reason="face parts need dlib-bin")
    from conftest import shared_path

    from advpriv.faces import find_faces
    from advpriv.faces.judges import as_uint8
    from advpriv.images import load_image
    from advpriv.visibility import face_parts

    photo = load_image(shared_path("data", "faces-wild", "images", "000989.jpg"))
    (face,) = find_faces(photo)
    parts = face_parts(as_uint8(photo), face.box)
    (left_eye, right_eye), lips = parts.eyes, parts.lips
    assert left_eye[2] < right_eye[0], "the eyes are side by side, image-left first"
    assert max(left_eye[3], right_eye[3]) < lips[1], "the lips are below the eyes"
    box_left, box_top, box_right, box_bottom = parts.box
    for left, top, right, bottom in parts.features:
        assert box_left <= left < right <= box_right and box_top <= top < bottom <= box_bottom + 10


def test_mnd_never_leaves_the_visibility_budget() -> None:
    from advpriv.protect.mnd import LUMA_CHROMA, MNDConfig, mnd
    from advpriv.protect.objectives import Misclassify
    from advpriv.targets import ClassifierTarget
    from advpriv.visibility import VisibilityBudget

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 48 * 48, 4))
    target, x = ClassifierTarget(net), _textured()[:, :, :48, :48].repeat(2, 1, 1, 1)
    x[1] = x[1].flip(-1)
    x = x.mul(255).round().div(255)  # a decoded photo
    parts = [FaceParts((4, 4, 43, 43), eyes=((10, 10, 20, 18),), lips=(15, 30, 32, 38))]
    goal = Misclassify(target, target.predict(x))
    loose = VisibilityLoss(x, parts, budget=VisibilityBudget(0.0, 100.0))
    free = mnd(x, goal, MNDConfig(steps=60, lr=1e-2, lam=1.0), quality=loose, basis=LUMA_CHROMA)
    assert bool(free.success.all()), "the toy needs a goal MND reaches without a budget"
    strict = VisibilityLoss(x, parts, budget=VisibilityBudget(0.9999, 0.05))
    bounded = mnd(x, goal, MNDConfig(steps=60, lr=1e-2, lam=1.0), quality=strict, basis=LUMA_CHROMA)
    assert not bool(bounded.success.any()), "a budget of almost no change cannot fool the model"
    assert bool(strict.within(bounded.images).all()), "a result outside the budget"


def test_a_crease_on_flat_skin_breaks_the_change_budget_that_ssim_misses() -> None:
    from advpriv.visibility import VisibilityBudget, face_change

    skin = torch.tensor([0.85, 0.65, 0.55]).view(1, 3, 1, 1).expand(1, 3, 192, 192).clone()
    rows = torch.arange(192.0).view(-1, 1)
    crease = (skin - 0.03 * torch.exp(-((rows - 96) / 4) ** 2)).mul(255).round().div(255)  # a soft dark line
    grain = skin + 0.02 * torch.randn(1, 1, 192, 192, generator=torch.Generator().manual_seed(0)).sign()
    box = (0, 0, 191, 191)
    assert float(ssim(skin, crease)) > 0.99 > 0.8 > float(ssim(skin, grain)), "SSIM passes the crease, not the grain"
    assert float(face_change(skin, crease, box)) > 1.5 > float(face_change(skin, grain, box))
    loose = VisibilityLoss(skin, [FaceParts(box)], budget=VisibilityBudget(0.92, 2.3))
    bounded = VisibilityLoss(skin, [FaceParts(box)], budget=VisibilityBudget(0.92, 2.3, max_change=1.5))
    assert bool(loose.within(crease)[0]) and not bool(bounded.within(crease)[0])

