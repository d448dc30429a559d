"""Fresh-attacker evaluation: freeze an encoder, train a new decoder, a new attribute classifier and a linear probe
from scratch on the training split's features until their validation loss stops improving, and report on the test
split.

Reported per encoder: reconstruction MS-SSIM / SSIM / PSNR, private-attribute accuracy of the classifier and of the
linear probe next to the majority-class rate, of the classifier against the mean of K noisy copies of each face (the
averaging attack; K = 16), optionally of attackers of another family (`advpriv.obfuscate.attackers`), and the
cloud classifier's utility accuracy per task. `evaluate_run` does this for the utility-only encoder, the
DeepObfuscator encoder, Gaussian noise on the utility-only features at matched utility accuracy, and NoPeek.

Example:
    >>> reports, recon = evaluate_run(load_run("runs/small"), data, AttackConfig(epochs=3))   # doctest: +SKIP
    >>> reports[1].ms_ssim                                                                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from advpriv.obfuscate.attackers import ResNetAttacker, UpsamplingDecoder, ssim_loss
from advpriv.obfuscate.baselines import Averaged, NoisyEncoder, accuracy, calibrate_noise, task_accuracies
from advpriv.obfuscate.checkpoint import Run
from advpriv.obfuscate.data import AttributeData
from advpriv.obfuscate.networks import Classifier, Decoder, SplitPoint, Widths
from advpriv.obfuscate.train import reconstruction_loss
from advpriv.quality import ms_ssim, psnr, ssim

ENCODER_NAMES = ("utility_only", "obfuscator", "noise")
AVERAGING_K = 16
"""Noisy copies of each face the averaging attacker receives and averages."""
Progress = Callable[[str], None]


@dataclass(frozen=True)
class AttackConfig:
    """How the fresh attackers are trained: epochs, Adam learning rate, minibatch, seed, and their size.

    epochs: the most epochs of each attacker; it stops earlier once its validation-split loss has not improved by
    more than `min_delta` for `patience` epochs, and keeps its best weights (patience 0: exactly `epochs`).

    width / fc: VGG width multiplier and FC size of the fresh decoder and attribute classifier; None means the
    encoder's own (the issue's protocol). A wider attacker is a stronger one: it reads the same frozen features
    through a first layer of the encoder's feature channels. decoder_epochs: epochs of the decoder (None: `epochs`);
    the decoder keeps improving long after the classifier has converged.
    cache_mb: the frozen encoder's training-split features are computed once and kept in memory when they fit in
    this many MiB (the encoder is frozen, so this changes nothing but the time; noise is still drawn per batch).

    >>> AttackConfig(width=0.5).widths(Widths(0.125, 256))
    Widths(width=0.5, fc=256)
    """

    epochs: int = 30
    patience: int = 3
    min_delta: float = 1e-3
    lr: float = 1e-3
    batch_size: int = 32
    seed: int = 0
    width: float | None = None
    fc: int | None = None
    decoder_epochs: int | None = None
    cache_mb: int = 1024

    def widths(self, encoder: Widths) -> Widths:
        """The attackers' widths, given the encoder's."""
        return Widths(encoder.width if self.width is None else self.width, encoder.fc if self.fc is None else self.fc)


@dataclass
class EncoderReport:
    """Test-split results of one frozen encoder against fresh attackers."""

    name: str
    utility_accuracy: float
    private_accuracy: float
    majority_rate: float
    ms_ssim: float
    ssim: float
    psnr: float
    noise_std: float | None = None
    linear_probe_accuracy: float | None = None
    attacker_epochs: dict[str, int] | None = None
    utility_accuracies: list[float] | None = None
    averaging_accuracy: float | None = None
    averaging_k: int | None = None
    resnet_accuracy: float | None = None
    ssim_decoder_ms_ssim: float | None = None

    def as_dict(self) -> dict[str, float | str | None]:
        return asdict(self)


Features = Callable[[torch.Tensor], torch.Tensor]
"""Frozen features of the images with the given indices."""


def frozen_features(encoder: nn.Module, data: AttributeData, idx: torch.Tensor, cache_mb: int = 1024,
                    batch_size: int = 256) -> Features:
    """A function from image indices to the frozen encoder's features, cached for `idx` when they fit in memory.

    An encoder with noise (an `Encoder` with a noisy bottleneck, a `NoisyEncoder`) is cached without it: its
    `add_noise` draws it afresh on every call, as it would be on the wire. Indices outside `idx` are computed on
    demand.
    """
    encoder.eval()
    base = getattr(encoder, "clean", encoder)
    add_noise = getattr(encoder, "add_noise", lambda z: z)
    with torch.no_grad():
        probe = base(data.batch(idx[:1]))
    size_mb = probe.numel() * probe.element_size() * len(idx) / 2**20
    if size_mb > cache_mb:
        def compute(b: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return encoder(data.batch(b))
        return compute
    with torch.no_grad():
        cache = torch.cat([base(data.batch(b)) for b in idx.split(batch_size)])
    where = torch.full((len(data),), -1, dtype=torch.long)
    where[idx] = torch.arange(len(idx))

    def cached(b: torch.Tensor) -> torch.Tensor:
        if bool((where[b] < 0).any()):
            with torch.no_grad():
                return encoder(data.batch(b))
        z = cache[where[b]]
        return add_noise(z)
    return cached


LossFn = Callable[[torch.Tensor, AttributeData, torch.Tensor], torch.Tensor]
"""loss_fn(model output, dataset, image indices)."""


@torch.no_grad()
def _mean_loss(model: nn.Module, features: Features, data: AttributeData, idx: torch.Tensor, loss_fn: LossFn,
               batch_size: int = 256) -> float:
    model.eval()
    return sum(float(loss_fn(model(features(b)), data, b)) * len(b) for b in idx.split(batch_size)) / len(idx)


def _fit(model: nn.Module, features: Features, data: AttributeData, idx: torch.Tensor, val_idx: torch.Tensor | None,
         loss_fn: LossFn, attack: AttackConfig, epochs: int) -> tuple[nn.Module, int]:
    """Train `model` on frozen features of the images `idx` for up to `epochs`, stopping early on `val_idx` (see
    `AttackConfig`); returns the model with its best weights, in eval mode, and the epochs run."""
    opt = torch.optim.Adam(model.parameters(), lr=attack.lr)
    best, best_state, stale = math.inf, None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        for b in idx[torch.randperm(len(idx))].split(attack.batch_size):
            loss = loss_fn(model(features(b)), data, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if val_idx is None or attack.patience == 0:
            continue
        val = _mean_loss(model, features, data, val_idx, loss_fn)
        if val < best - attack.min_delta:
            best, best_state, stale = val, copy.deepcopy(model.state_dict()), 0
        else:
            if val < best:
                best, best_state = val, copy.deepcopy(model.state_dict())
            stale += 1
            if stale >= attack.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), epoch if epochs else 0


def _as_features(encoder: nn.Module | Features, data: AttributeData, idx: torch.Tensor,
                 attack: AttackConfig) -> tuple[Features, int]:
    """Accept an encoder or a `frozen_features` function; return the function and the feature channels."""
    features = frozen_features(encoder, data, idx, attack.cache_mb) if isinstance(encoder, nn.Module) else encoder
    return features, features(idx[:1]).shape[1]


def _reconstruction(out: torch.Tensor, data: AttributeData, b: torch.Tensor) -> torch.Tensor:
    return reconstruction_loss(out, data.batch(b))


def _bce(labels: torch.Tensor) -> LossFn:
    return lambda out, data, b: F.binary_cross_entropy_with_logits(out, labels[b])


def _ssim_reconstruction(out: torch.Tensor, data: AttributeData, b: torch.Tensor) -> torch.Tensor:
    return ssim_loss(out, data.batch(b))


class LinearProbe(nn.Module):
    """The simplest attacker: one linear layer on the flattened features; returns logits (N,).

    >>> LinearProbe((8, 1, 1))(torch.rand(2, 8, 1, 1)).shape
    torch.Size([2])
    """

    def __init__(self, feature_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(feature_shape), 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z.flatten(1)).squeeze(1)


def train_decoder(encoder: nn.Module | Features, data: AttributeData, idx: torch.Tensor, widths: Widths,
                  attack: AttackConfig, split: SplitPoint = SplitPoint(),
                  val_idx: torch.Tensor | None = None) -> tuple[Decoder, int]:
    """`fresh_decoder`, also returning the epochs it ran."""
    features, channels = _as_features(encoder, data, idx, attack)
    torch.manual_seed(attack.seed)
    model = Decoder(attack.widths(widths), data.image_size, in_channels=channels, split=split)
    return _fit(model, features, data, idx, val_idx, _reconstruction, attack, attack.decoder_epochs or attack.epochs)


def train_classifier(encoder: nn.Module | Features, data: AttributeData, idx: torch.Tensor, labels: torch.Tensor,
                     widths: Widths, attack: AttackConfig, split: SplitPoint = SplitPoint(),
                     val_idx: torch.Tensor | None = None, linear: bool = False) -> tuple[nn.Module, int]:
    """`fresh_classifier` (or, with `linear`, a `LinearProbe`), also returning the epochs it ran."""
    features, _ = _as_features(encoder, data, idx, attack)
    torch.manual_seed(attack.seed + 1)
    shape = tuple(features(idx[:1]).shape[1:])
    model = (LinearProbe(shape) if linear else
             Classifier(attack.widths(widths), data.image_size, in_channels=shape[0], split=split))
    return _fit(model, features, data, idx, val_idx, _bce(labels), attack, attack.epochs)


def train_other_family(encoder: nn.Module | Features, data: AttributeData, idx: torch.Tensor, labels: torch.Tensor,
                       attack: AttackConfig, val_idx: torch.Tensor | None = None,
                       decoder: bool = True) -> tuple[nn.Module, nn.Module | None]:
    """A `ResNetAttacker` (BCE on `labels`) and, with `decoder`, an `UpsamplingDecoder` (1 − SSIM) trained from
    scratch on the frozen features, early-stopped as the VGG attackers are; returns both (None: no decoder)."""
    features, _ = _as_features(encoder, data, idx, attack)
    shape = tuple(features(idx[:1]).shape[1:])
    torch.manual_seed(attack.seed + 3)
    resnet, _ = _fit(ResNetAttacker(shape[0]), features, data, idx, val_idx, _bce(labels), attack, attack.epochs)
    if not decoder:
        return resnet, None
    torch.manual_seed(attack.seed + 4)
    fresh, _ = _fit(UpsamplingDecoder(shape, data.image_size), features, data, idx, val_idx, _ssim_reconstruction,
                    attack, attack.decoder_epochs or attack.epochs)
    return resnet, fresh


def fresh_decoder(encoder: nn.Module | Features, data: AttributeData, idx: torch.Tensor, widths: Widths,
                  attack: AttackConfig, split: SplitPoint = SplitPoint(),
                  val_idx: torch.Tensor | None = None) -> Decoder:
    """A decoder of the adversary's architecture trained from scratch with 1 − MS-SSIM, output clamped to [0,1].

    `widths` and `split` are the encoder's; the decoder's own widths come from `attack.widths(widths)`. Given
    `val_idx`, it stops once the validation loss stops improving (see `AttackConfig`).
    """
    return train_decoder(encoder, data, idx, widths, attack, split, val_idx)[0]


def fresh_classifier(encoder: nn.Module | Features, data: AttributeData, idx: torch.Tensor, labels: torch.Tensor,
                     widths: Widths, attack: AttackConfig, split: SplitPoint = SplitPoint(),
                     val_idx: torch.Tensor | None = None) -> Classifier:
    """An attribute classifier of the cloud architecture trained from scratch with BCE (early stopping as above)."""
    return train_classifier(encoder, data, idx, labels, widths, attack, split, val_idx)[0]


@torch.no_grad()
def reconstruction_scores(encoder: nn.Module, decoder: nn.Module, data: AttributeData, idx: torch.Tensor,
                          batch_size: int = 128) -> dict[str, float]:
    """Mean MS-SSIM, SSIM and PSNR of decoder(encoder(x)) against x over the images `idx`."""
    encoder.eval(), decoder.eval()
    sums = {"ms_ssim": 0.0, "ssim": 0.0, "psnr": 0.0}
    for b in idx.split(batch_size):
        x = data.batch(b)
        y = decoder(encoder(x)).clamp(0, 1)
        for k, f in (("ms_ssim", ms_ssim), ("ssim", ssim), ("psnr", psnr)):
            sums[k] += float(f(y, x).sum())
    return {k: v / len(idx) for k, v in sums.items()}


@torch.no_grad()
def average_face_ms_ssim(data: AttributeData, train_idx: torch.Tensor, test_idx: torch.Tensor,
                         batch_size: int = 500) -> float:
    """Mean MS-SSIM on `test_idx` of the average training image: a decoder that ignores the features gets this."""
    mean = sum(data.batch(b).sum(0) for b in train_idx.split(batch_size)) / len(train_idx)
    return sum(float(ms_ssim(mean.expand(len(b), -1, -1, -1), data.batch(b)).sum())
               for b in test_idx.split(batch_size)) / len(test_idx)


def majority_rate(train_labels: torch.Tensor, test_labels: torch.Tensor) -> float:
    """How often the training split's majority class is right on the test split."""
    majority = float(train_labels.mean() >= 0.5)
    return float((test_labels == majority).float().mean())


@torch.no_grad()
def knn_accuracy(encoder: nn.Module, data: AttributeData, splits: dict[str, torch.Tensor], labels: torch.Tensor) -> float:
    """Test accuracy of a k-nearest-neighbour attacker on standardised features, k chosen on validation."""
    features = frozen_features(encoder, data, torch.cat(list(splits.values())))
    z = {k: features(v).flatten(1) for k, v in splits.items()}
    mean, std = z["train"].mean(0), z["train"].std(0) + 1e-6
    z = {k: (v - mean) / std for k, v in z.items()}
    y = labels[splits["train"]]

    def votes(part: str, k: int) -> torch.Tensor:
        near = torch.cat([torch.cdist(b, z["train"]).topk(k, largest=False).indices for b in z[part].split(250)])
        return (y[near].mean(1) > 0.5).float()

    k = max((5, 25, 101), key=lambda k: float((votes("val", k) == labels[splits["val"]]).float().mean()))
    return float((votes("test", k) == labels[splits["test"]]).float().mean())


@torch.no_grad()
def is_noisy(encoder: nn.Module, x: torch.Tensor) -> bool:
    """Whether two runs of the encoder on `x` differ (it draws noise)."""
    encoder.eval()
    return not torch.equal(encoder(x), encoder(x))


def evaluate_encoder(name: str, encoder: nn.Module, cloud: nn.Module, data: AttributeData,
                     splits: dict[str, torch.Tensor], utility: torch.Tensor, private: torch.Tensor, widths: Widths,
                     attack: AttackConfig, split: SplitPoint = SplitPoint(), decoder: bool = True,
                     averaging_k: int = AVERAGING_K, other_family: bool = False,
                     ) -> tuple[EncoderReport, Decoder | None]:
    """Fresh attackers against one frozen encoder; returns its report and the fresh decoder.

    decoder: train the decoders (the most costly attackers; without them the reconstruction scores are NaN).
    averaging_k: a noisy encoder is also attacked by a classifier trained and tested on the mean of this many noisy
    copies of each face (0: not); a deterministic one's averaging accuracy is its classifier's. other_family: also
    the ResNet-18-style classifier and (with `decoder`) the SSIM-trained upsampling decoder.
    """
    train_idx, val_idx, test_idx = splits["train"], splits["val"], splits["test"]
    features = frozen_features(encoder, data, torch.cat([train_idx, val_idx]), attack.cache_mb)
    epochs: dict[str, int] = {}
    rec = {"ms_ssim": math.nan, "ssim": math.nan, "psnr": math.nan}
    fresh = None
    if decoder:
        fresh, epochs["decoder"] = train_decoder(features, data, train_idx, widths, attack, split, val_idx)
        torch.manual_seed(attack.seed + 2)
        rec = reconstruction_scores(encoder, fresh, data, test_idx)
    attribute, epochs["classifier"] = train_classifier(features, data, train_idx, private, widths, attack, split,
                                                       val_idx)
    probe, epochs["linear_probe"] = train_classifier(features, data, train_idx, private, widths, attack, split,
                                                     val_idx, linear=True)
    torch.manual_seed(attack.seed + 2)
    private_accuracy = accuracy(encoder, attribute, data, test_idx, private)
    averaged = None
    if averaging_k:
        averaged = private_accuracy
        if is_noisy(encoder, data.batch(test_idx[:8])):
            mean_of_k = Averaged(encoder, averaging_k)
            model, epochs["averaging"] = train_classifier(mean_of_k, data, train_idx, private, widths, attack,
                                                          split, val_idx)
            averaged = accuracy(mean_of_k, model, data, test_idx, private)
    extra: dict[str, float] = {}
    if other_family:
        resnet, ssim_decoder = train_other_family(features, data, train_idx, private, attack, val_idx, decoder)
        extra = {"resnet_accuracy": accuracy(encoder, resnet, data, test_idx, private)}
        if ssim_decoder is not None:
            extra["ssim_decoder_ms_ssim"] = reconstruction_scores(encoder, ssim_decoder, data, test_idx)["ms_ssim"]
    per_task = task_accuracies(encoder, cloud, data, test_idx, utility).tolist()
    report = EncoderReport(
        name=name,
        utility_accuracy=sum(per_task) / len(per_task),
        private_accuracy=private_accuracy,
        majority_rate=majority_rate(private[train_idx], private[test_idx]),
        noise_std=getattr(encoder, "std", None),
        linear_probe_accuracy=accuracy(encoder, probe, data, test_idx, private),
        attacker_epochs=epochs,
        utility_accuracies=per_task,
        averaging_accuracy=averaged,
        averaging_k=averaging_k or None,
        **extra,
        **rec,
    )
    return report, fresh


def evaluate_run(run: Run, data: AttributeData, attack: AttackConfig = AttackConfig(),
                 montage_count: int = 8, progress: Progress | None = None, names: tuple[str, ...] = ENCODER_NAMES,
                 ) -> tuple[list[EncoderReport], dict[str, torch.Tensor]]:
    """Evaluate the named encoders of a run: "utility_only", "obfuscator", "noise" (Gaussian noise on the
    utility-only features at the obfuscator's utility accuracy) and, if trained, "nopeek".

    Returns the reports and, for the montage, the first `montage_count` test images ("original") and each
    encoder's fresh reconstructions of them.
    """
    cfg = run.config
    say = progress or (lambda _: None)
    splits = cfg.splits(data)
    utility, private = data.labels_of(cfg.utility), data.labels_of(cfg.private)
    encoders: dict[str, tuple[nn.Module, nn.Module]] = {}
    for name in names:
        if name == "noise":
            plain, obf = run.parties("utility_only"), run.parties("obfuscator")
            say("calibrating the noise baseline to the obfuscator's utility accuracy on the validation split")
            target = accuracy(obf["E"], obf["C"], data, splits["val"], utility)
            std = calibrate_noise(plain["E"], plain["C"], data, splits["val"], utility, target, seed=attack.seed)
            encoders[name] = (NoisyEncoder(plain["E"], std), plain["C"])
        else:
            parts = run.parties(name)
            encoders[name] = (parts["E"], parts["C"])
    shown = splits["test"][:montage_count]
    recon = {"original": data.batch(shown)}
    reports = []
    for name, (encoder, cloud) in encoders.items():
        say(f"training fresh attackers against the {name} encoder")
        report, decoder = evaluate_encoder(name, encoder, cloud, data, splits, utility, private, cfg.widths, attack,
                                           cfg.split_point)
        reports.append(report)
        with torch.no_grad():
            recon[name] = decoder(encoder(recon["original"])).clamp(0, 1)
    return reports, recon
