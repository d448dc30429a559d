"""Minimum Noticeable Difference (MND) protection (Sun, Jin & Lin, 2022).

Find x' = clip(x + δ) minimising L_adv(x') + λ·L_q(x, x'), where L_adv is the objective's margin loss and
L_q = α·MSE(δ) + β·(1 − SSIM) + γ·GMSD is the perceptual quality loss (`advpriv.quality.quality_loss`).

The trade-off λ is searched per image, as C&W search their constant, but interleaved with one warm-started Adam
run instead of restarting: every `search_every` steps λ grows (more quality) if the image fooled the model in
that window and shrinks otherwise; each reversal of direction halves the step (in log space), so λ settles on
the boundary between fooling and not fooling. Every step is evaluated on
the 8-bit image (straight-through rounding), so the kept result is the best-quality image that fools the model
*after* quantisation, and success is exact rather than hoped for.

Example:
    >>> import torch
    >>> from advpriv.targets import ClassifierTarget
    >>> from advpriv.protect.objectives import Misclassify
    >>> _ = torch.manual_seed(0); net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(768, 3))
    >>> target = ClassifierTarget(net); x = torch.rand(2, 3, 16, 16)
    >>> result = mnd(x, Misclassify(target, target.predict(x)), MNDConfig(steps=200))
    >>> bool(result.success.all()), result.images.shape
    (True, torch.Size([2, 3, 16, 16]))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .. import progress
from ..quality import QualityLoss, QualityWeights
from .adam import FusedAdam
from .eot import clamped_8bit
from .objectives import Objective
from .ragged import RaggedQuality, Sizes


LUMA_CHROMA = torch.tensor([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])
"""JPEG's YCbCr to RGB: Adam's coordinates as luma (a grey step) and two colour differences."""


@dataclass(frozen=True)
class MNDConfig:
    """Settings of the MND search; the defaults are what the benchmark in bench/results/ measured.

    steps: Adam iterations per image. 50, as torchattacks' C&W default: on EfficientNet-Lite0 this already fools
        the model on (nearly) every image, with most windows spent trading excess margin back for quality.
    lr: Adam step on δ, in [0,1] pixel units. 2e-3 is half an 8-bit level: fine enough that the search settles
        within a level or two of the decision boundary, large enough to cross it within ~10 steps.
    lam: initial quality weight λ. With the default `QualityWeights`, L_q ≈ 1 at the edge of visibility, and the
        λ at which images settled on EfficientNet-Lite0 had a median near 100; starting at 64 wastes few windows.
    search_every: steps between λ updates (a "window"); search_factor: λ's first multiplier per window.
    stop_tol: an image has settled once it fools the model and its best L_q improved by less than this fraction
        in the last window: further steps cost time for no visible gain. A settled image leaves the batch (when
        the objective offers `select`; otherwise the batch stops once all have settled), so an image's search does not
        depend on when its batch mates settle (up to float rounding and shared random draws; bench/results/speed.md).
    time_limit: seconds after which the search stops and returns the best images found so far (None: no limit).
    quorum: the share of a window's steps that must succeed for λ to grow. 0 means any one step, right for an
        exact objective; an objective judged on random transformations (`advpriv.protect.eot.Robust`) succeeds by
        chance now and then, and 0.5 asks that it hold on most draws before quality is traded back.
    """

    steps: int = 50
    lr: float = 2e-3
    lam: float = 64.0
    search_every: int = 10
    search_factor: float = 4.0
    stop_tol: float = 0.01
    time_limit: float | None = None
    quorum: float = 0.0
    weights: QualityWeights = field(default_factory=QualityWeights)


@dataclass
class MNDResult:
    """Per image: the best 8-bit image found, whether it fools the objective, and the final λ; steps run."""

    images: torch.Tensor
    success: torch.Tensor
    lam: torch.Tensor
    steps: int


def mnd(
    x: torch.Tensor,
    objective: Objective,
    config: MNDConfig = MNDConfig(),
    sizes: Sizes | None = None,
    quality: QualityLoss | None = None,
    basis: torch.Tensor | None = None,
) -> MNDResult:
    """Protect a batch of same-sized images (N,3,H,W) in [0,1], or with `sizes`, images of these sizes on a
    zero-padded canvas (`advpriv.protect.ragged`; the objective must read them so too). `quality`: the quality
    loss against `x` (anything with `QualityLoss`' call and `select`, such as `advpriv.visibility.VisibilityLoss`);
    by default `QualityLoss(x, config.weights)`. `basis`: a 3×3 matrix whose columns are the colours Adam's three
    coordinates per pixel move along (default: R, G, B). Adam scales each coordinate's step on its own, so with
    `LUMA_CHROMA` a loss that penalises hue moves the chroma coordinates only, and lightness stays free.

    An image that never fools the objective comes back as its last candidate (success False), where λ's search
    weighed the goal most, rather than as the unprotected photo. When `quality` has a `within(images)` budget
    (`advpriv.visibility.VisibilityLoss`), a candidate outside it is never kept and turns λ up like a success
    would; an image that cannot fool the objective inside the budget comes back as the candidate inside it that
    came closest (lowest adversarial loss), or unchanged if none was inside, so the budget bounds every result.
    """
    x = x.detach()
    n = x.shape[0]
    delta = torch.zeros_like(x, requires_grad=True)
    opt = FusedAdam(delta, lr=config.lr)
    lam = torch.full((n,), config.lam)
    factor, last_fooled = torch.full((n,), config.search_factor), torch.zeros(n, dtype=torch.bool)
    best, best_q = x.clone(), torch.full((n,), float("inf"))
    last: tuple[torch.Tensor, torch.Tensor] | None = None  # (active, their candidates) of the latest step
    successes_in_window, window_start_q = torch.zeros(n), best_q.clone()
    deadline = None if config.time_limit is None else time.monotonic() + config.time_limit
    select = getattr(objective, "select", None)
    active, goal = torch.arange(n), objective
    if quality is None:
        quality = QualityLoss(x, config.weights) if sizes is None else RaggedQuality(x, sizes, config.weights)
    all_quality = quality
    within = getattr(quality, "within", None)
    closest, closest_adv = x.clone(), torch.full((n,), float("inf"))
    steps_run = 0
    progress.stage("protecting")

    for step in range(config.steps):
        if deadline is not None and time.monotonic() > deadline:
            break
        x_in, d_in = (x, delta) if len(active) == n else (x[active], delta[active])
        x_adv = clamped_8bit(x_in + (d_in if basis is None else torch.einsum("ij,njhw->nihw", basis, d_in)))
        adv, success = goal(x_adv)
        q = quality(x_adv)
        with torch.no_grad():
            last = (active, x_adv.detach())
            allowed = torch.ones_like(success) if within is None else within(x_adv)
            better = success & allowed & (q < best_q[active])
            best[active[better]], best_q[active[better]] = x_adv[better].detach(), q[better].detach()
            if within is not None:
                nearer = allowed & (adv.detach() < closest_adv[active])
                closest[active[nearer]], closest_adv[active[nearer]] = x_adv[nearer].detach(), adv.detach()[nearer]
            successes_in_window[active] += (success | ~allowed).float()
        opt.zero_grad()
        (adv + lam[active] * q).sum().backward()
        opt.step()
        steps_run += 1
        progress.step(step + 1, config.steps,
                      lambda: {"lam": float(lam[active].mean()), "quality": float(q.detach().mean())})
        if (step + 1) % config.search_every == 0:
            live = torch.zeros(n, dtype=torch.bool).index_fill_(0, active, True)
            fooled_in_window = successes_in_window > config.quorum * config.search_every
            reversed_ = (fooled_in_window != last_fooled) & (step + 1 > config.search_every)
            factor = torch.where(reversed_ & live, factor.sqrt(), factor)
            lam = torch.where(live, torch.where(fooled_in_window, lam * factor, lam / factor), lam)
            settled = (best_q >= window_start_q * (1 - config.stop_tol)) & best_q.isfinite()
            last_fooled, window_start_q = fooled_in_window.clone(), best_q.clone()
            successes_in_window.zero_()
        else:
            settled = torch.zeros(n, dtype=torch.bool)
        if step == 0:  # δ is still 0: an image that fooled the model as it is (on 8-bit levels) is done
            settled[active[success]] = True
        if bool(settled[active].all()):
            break
        if select is not None and bool(settled[active].any()):
            active = active[~settled[active]]
            goal, quality = select(active), all_quality.select(active)
    success = torch.isfinite(best_q)
    if within is not None:  # the closest candidate inside the budget, or the image itself if none was
        best[~success] = closest[~success]
    elif last is not None:  # an image that never succeeded searched to the end, so it was in the latest step
        still, candidates = last
        failed = ~success[still]
        best[still[failed]] = candidates[failed]
    return MNDResult(images=best, success=success, lam=lam, steps=steps_run)
