"""MND and the anchors through the Python API: success is exact on 8-bit images, quality is reported."""

from __future__ import annotations

import csv

import pytest
import torch

import advpriv
from advpriv.images import load_image, quantize
from advpriv.protect import MNDConfig, Misclassify, mnd
from advpriv.targets import load_target
from conftest import shared_path


@pytest.fixture(scope="module")
def toy():
    return load_target("toy_models:tiny_classifier")


def test_margin_loss_untargeted_and_targeted(toy):
    x = torch.rand(3, 3, 16, 16)
    logits, y = toy(x), toy.predict(x)
    loss, success = Misclassify(toy, y, kappa=0.0)(x)
    top2 = logits.topk(2, 1).values
    assert torch.allclose(loss, top2[:, 0] - top2[:, 1]) and not success.any()
    loss, success = Misclassify(toy, y, kappa=0.0, target_class=y)(x)
    assert torch.all(loss == 0) and success.all()


def test_mnd_fools_the_toy_model_with_small_changes(toy):
    torch.manual_seed(0)
    x = quantize(torch.rand(4, 3, 24, 24))
    y = toy.predict(x)
    result = mnd(x, Misclassify(toy, y), MNDConfig(steps=60, lr=5e-3, lam=1.0))
    assert result.success.all()
    assert torch.equal(result.images, quantize(result.images))
    assert not toy.predict(result.images).eq(y).any()
    assert (result.images - x).abs().max() < 0.25


def test_mnd_settled_images_leave_the_batch_and_batch_mates_do_not_matter(toy):
    torch.manual_seed(0)
    x = quantize(torch.rand(4, 3, 24, 24))
    y = toy.predict(x)
    y[0] = (y[0] + 1) % 5  # the model already misreads image 0: it settles at once, unchanged
    seen: list[int] = []

    class Counting(Misclassify):
        def __call__(self, images):
            seen.append(len(images))
            return super().__call__(images)

        def select(self, index):
            return Counting(self.target, self.labels[index], self.kappa)

    config = MNDConfig(steps=80, lr=5e-3, lam=1.0)
    together = mnd(x, Counting(toy, y), config)
    assert seen[0] == 4 and min(seen) < 4 and seen == sorted(seen, reverse=True)
    assert torch.equal(together.images[0], x[0]) and together.success.all()
    for i in range(4):
        alone = mnd(x[i : i + 1], Misclassify(toy, y[i : i + 1]), config)
        assert torch.equal(alone.images[0], together.images[i]) and torch.equal(alone.lam, together.lam[i : i + 1])


def test_protect_api_mixed_sizes_and_targeted(toy):
    torch.manual_seed(0)
    images = [torch.rand(3, 20, 30), torch.rand(3, 2, 2), torch.rand(3, 20, 30)]
    results = advpriv.protect(images, target=toy, config=MNDConfig(steps=40, lr=1e-2, lam=1.0))
    assert [r.image.shape for r in results] == [im.shape for im in images]
    assert all(r.success and r.after != r.before for r in results)
    clean = int(toy.predict(images[0][None])[0])
    wanted = (clean + 1) % 5
    r = advpriv.protect(images[:1], target=toy, target_class=wanted, config=MNDConfig(steps=60, lr=1e-2, lam=1.0))[0]
    assert r.success and r.after == str(wanted)


def test_images_of_different_sizes_share_the_network_and_end_as_if_alone(toy):
    torch.manual_seed(0)
    images = [quantize(torch.rand(3, h, w)) for h, w in ((24, 30), (20, 20), (30, 16))]
    config = MNDConfig(steps=60, lr=5e-3, lam=1.0)
    batches: list[int] = []
    hook = toy.model.register_forward_hook(lambda module, inputs, output: batches.append(len(inputs[0])))
    try:
        together = advpriv.protect(images, target=toy, config=config)
    finally:
        hook.remove()
    assert batches[0] == 3, "the three sizes did not share the network's first step"
    for image, result in zip(images, together):
        alone = advpriv.protect([image], target=toy, config=config)[0]
        assert result.image.shape == image.shape and result.success
        assert torch.equal(alone.image, result.image) and alone.after == result.after
        assert alone.metrics == pytest.approx(result.metrics)


def test_recheck_judges_the_reencoded_copies_too(toy):
    torch.manual_seed(0)
    (result,) = advpriv.protect([torch.rand(3, 24, 24)], target=toy, config=MNDConfig(steps=40, lr=1e-2, lam=1.0))
    check = result.recheck(result.image)
    assert check.success == result.success and list(check.variants) == ["jpeg85", "half"]
    for name, copy in check.variants.items():
        assert copy.summary in {str(k) for k in range(5)} and copy.faces == [] and not copy.variants
        assert copy.success == (copy.summary != result.before), name
    assert list(check.versions("png")) == ["png", "jpeg85", "half"]


@pytest.mark.parametrize("method, budget", [("fgsm", {"eps": 16 / 255}), ("pgd", {"eps": 16 / 255}), ("cw", {"c": 10.0})])
def test_anchors_run_through_torchattacks(toy, method, budget):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    results = advpriv.protect(x, target=toy, method=method, **budget)
    for r in results:
        assert torch.equal(r.image, quantize(r.image)) and r.metrics["psnr"] > 10


def test_unknown_method_and_bad_shape(toy):
    with pytest.raises(ValueError, match="unknown method"):
        advpriv.protect(torch.rand(1, 3, 8, 8), target=toy, method="magic")
    with pytest.raises(ValueError, match="fgsm does not take c"):
        advpriv.protect(torch.rand(1, 3, 8, 8), target=toy, method="fgsm", c=1.0)
    with pytest.raises(ValueError, match=r"expected \(3,H,W\)"):
        advpriv.protect([torch.rand(8, 8)], target=toy)


def test_real_efficientnet_is_fooled_invisibly():
    folder = shared_path("data", "imagenet-val")
    row = next(csv.DictReader(open(folder / "labels.csv")))
    x = load_image(folder / "images" / row["file"])
    result = advpriv.protect([x], target="efficientnet-lite0", labels=[int(row["label"])], config=MNDConfig(steps=20))[0]
    assert result.success and result.before != result.after
    assert result.metrics["psnr"] > 40 and result.metrics["ssim"] > 0.98 and result.metrics["vif"] > 0.9


def test_mnds_adam_steps_bit_for_bit_as_torchs_fused_adam():
    from advpriv.protect.adam import FusedAdam

    generator = torch.Generator().manual_seed(0)
    ours = torch.zeros(2, 3, 9, 7, requires_grad=True)
    theirs = torch.zeros(2, 3, 9, 7, requires_grad=True)
    adam, reference = FusedAdam(ours, lr=2e-3), torch.optim.Adam([theirs], lr=2e-3, fused=True)
    for step in range(25):
        grad = torch.randn(ours.shape, generator=generator) * (step + 1) if step != 7 else None  # a step without one
        for optimiser, param in ((adam, ours), (reference, theirs)):
            optimiser.zero_grad()
            param.grad = None if grad is None else grad.clone()
            optimiser.step()
        assert torch.equal(ours, theirs)


def test_mnd_does_not_import_torch_dynamo():
    """torch.optim's optimisers import torch._dynamo when first built: about 1.2 s of every command's start."""
    import subprocess
    import sys

    script = ("import sys, torch; from advpriv.protect import MNDConfig, Misclassify, mnd; "
              "from advpriv.targets import ClassifierTarget; "
              "net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3)); t = ClassifierTarget(net); "
              "x = torch.rand(1, 3, 4, 4); mnd(x, Misclassify(t, t.predict(x)), MNDConfig(steps=3)); "
              "print('torch._dynamo' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
