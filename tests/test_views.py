"""The deployment's views for classifiers: exact JPEG, the views shown per step, and robust protection of a real
photo judged by Pillow's resize and JPEG, alone or in a batch."""

from __future__ import annotations

import csv

import pytest
import torch

import advpriv
from advpriv.images import load_image
from advpriv.protect.objectives import Misclassify
from advpriv.protect.reencode import deployment_views, jpeg85, pillow_jpeg
from advpriv.protect.strength import strength_options
from advpriv.protect.views import SOFT_JPEG_PIXELS, Views, ViewsConfig, exact_jpeg
from advpriv.targets import ClassifierTarget, load_target
from conftest import shared_path


@pytest.fixture(scope="module")
def lite0():
    return load_target("efficientnet-lite0")


@pytest.fixture(scope="module")
def two_photos(lite0):
    folder = shared_path("data", "imagenet-val")
    rows = list(csv.DictReader(open(folder / "labels.csv")))[:2]
    return torch.stack([load_image(folder / "images" / r["file"]) for r in rows]), [int(r["label"]) for r in rows]


def _pooled_classifier(short_side: int | None = None) -> ClassifierTarget:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 5))
    return ClassifierTarget(net, short_side=short_side)


def test_exact_jpeg_is_pillows_and_large_photos_take_the_identity_gradient():
    side = int(SOFT_JPEG_PIXELS**0.5) + 8
    large = torch.rand(1, 3, side, side, requires_grad=True)
    out = exact_jpeg(large, 80)
    assert torch.equal(out.detach()[0], pillow_jpeg(large.detach()[0], 80))
    out.sum().backward()
    assert torch.equal(large.grad, torch.ones_like(large))


def test_each_step_shows_one_kernel_plain_and_the_other_after_jpeg():
    target = _pooled_classifier()
    views = Views(Misclassify(target, torch.tensor([0])), ViewsConfig(short_side=12, jpeg=(80, 80)))
    x = torch.rand(1, 3, 16, 20)
    first, second = views.views(x), views.views(x)
    assert first.shape == (2, 3, 12, 15) and views.count == 2
    assert not torch.equal(first[0], second[0])  # the plain view's kernel took turns
    every = Views(Misclassify(target, torch.tensor([0])), ViewsConfig(short_side=None, rotate=False))
    assert every.count == 4 and every.views(x).shape == (4, 3, 16, 20)


def test_views_succeed_only_when_every_view_is_fooled_by_the_margin():
    target = _pooled_classifier()
    x = torch.rand(3, 3, 16, 16)
    y = target.predict(x)
    loss, success = Views(Misclassify(target, y, kappa=0.0), ViewsConfig(short_side=None))(x)
    assert not success.any() and loss.shape == (3,)  # nothing changed: the model still says y on every view
    loss, success = Views(Misclassify(target, (y + 1) % 5, kappa=-100.0), ViewsConfig(short_side=None))(x)
    assert success.all() and torch.equal(loss, torch.zeros(3))


def test_recheck_adds_the_deployments_pillow_resizes_for_classifiers():
    target = _pooled_classifier(short_side=12)
    (result,) = advpriv.protect([torch.rand(3, 16, 24)], target=target, **strength_options("low", "toy"))
    check = result.recheck(result.image)
    assert list(check.variants) == ["jpeg85", "half", "pil-bilinear", "pil-bicubic"]
    for name, transform in deployment_views(12).items():
        assert check.variants[name].summary == str(int(target.predict(transform(result.image)[None])[0]))


def test_eot_and_views_together_are_refused():
    from advpriv.protect.eot import EOTConfig

    with pytest.raises(ValueError, match="choose one of eot and views"):
        advpriv.protect(torch.rand(1, 3, 8, 8), target=_pooled_classifier(), eot=EOTConfig(), views=(70, 95))


def test_default_level_holds_through_pillow_bicubic_and_jpeg85_alone_or_in_a_batch(lite0, one_thread, two_photos):
    images, labels = two_photos
    options = strength_options("medium", "efficientnet-lite0")
    alone = advpriv.protect(images[:1], target=lite0, labels=labels[:1], **options)[0]
    together = advpriv.protect(images, target=lite0, labels=labels, **options)
    assert alone.success and alone.metrics["psnr"] > 45
    bicubic = deployment_views(256)["pil-bicubic"]
    for copy in (bicubic(alone.image), jpeg85(alone.image)):
        assert int(lite0.predict(copy[None])[0]) != labels[0]
    # The batch mate changes nothing beyond float rounding: same JPEG draws and kernel turns per step.
    assert together[0].success == alone.success
    assert (together[0].image - alone.image).abs().mean() < 1e-4
