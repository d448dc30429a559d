"""Targets: EfficientNet-Lite0's own preprocessing, and user targets from TorchScript files or factories."""

from __future__ import annotations

import csv

import pytest
import torch

from advpriv.images import load_image
from advpriv.targets import ClassifierTarget, load_target
from advpriv.targets.preprocess import center_crop, resize_short_side
from conftest import shared_path

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


@pytest.fixture(scope="module")
def lite0():
    return load_target("efficientnet-lite0")


def test_resize_and_crop_shapes():
    x = torch.rand(1, 3, 227, 300)
    assert center_crop(resize_short_side(x, 256), 224).shape == (1, 3, 224, 224)
    assert resize_short_side(torch.rand(1, 3, 10, 5), 256).shape == (1, 3, 512, 256)


def test_lite0_accepts_any_size_and_is_differentiable(lite0):
    x = torch.rand(1, 3, 123, 457, requires_grad=True)
    lite0(x)[0, 0].backward()
    assert x.grad.shape == x.shape and x.grad.abs().sum() > 0


def test_lite0_own_scaling_beats_imagenet_mean_std(lite0):
    """Pins the measured fact: (x − 127)/128 gives top-1 0.832 on imagenet-val, mean/std only 0.783."""
    folder = shared_path("data", "imagenet-val")
    rows = list(csv.DictReader(open(folder / "labels.csv")))[:48]
    x = torch.stack([load_image(folder / "images" / r["file"]) for r in rows])
    y = torch.tensor([int(r["label"]) for r in rows])
    own = lite0.predict(x) == y
    with torch.no_grad():
        crop = center_crop(resize_short_side(x, 256), 224)
        std = lite0.model((crop - IMAGENET_MEAN) / IMAGENET_STD).argmax(1) == y
    assert int(own.sum()) == 37 and int(std.sum()) == 35
    assert own[[13, 28, 29, 36]].all() and not std[[13, 28, 29, 36]].any()


def test_torchscript_file_target(tmp_path):
    net = torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4)))
    path = tmp_path / "model.pt"
    net.save(str(path))
    target = load_target(str(path), trust_code=True)
    assert isinstance(target, ClassifierTarget) and target(torch.rand(2, 3, 2, 2)).shape == (2, 4)


def test_factory_target():
    target = load_target("toy_models:tiny_classifier")
    assert target(torch.rand(1, 3, 50, 70)).shape == (1, 5)


@pytest.mark.parametrize(
    "spec, message",
    [("no-such-model", "unknown target"), ("missing.pt", "does not exist"), ("nomodule_xyz:f", "cannot load target")],
)
def test_bad_target_specs_say_what_to_do(spec, message):
    with pytest.raises(ValueError, match=message):
        load_target(spec)


def test_not_torchscript(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a TorchScript model"):
        load_target(str(path), trust_code=True)
