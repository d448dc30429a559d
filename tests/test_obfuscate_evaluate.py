"""Fresh-attacker evaluation, the matched-noise baseline and the montage, on a tiny trained run."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from test_obfuscate_data import one_thread, write_dataset  # noqa: F401 (autouse fixture)

from advpriv.obfuscate.baselines import NoisyEncoder, accuracy, calibrate_noise
from advpriv.obfuscate.config import TrainConfig
from advpriv.obfuscate.data import load_attributes
from advpriv.obfuscate.evaluate import AttackConfig, evaluate_run, fresh_classifier, fresh_decoder, frozen_features, majority_rate
from advpriv.obfuscate.checkpoint import load_run
from advpriv.obfuscate.montage import save_montage
from advpriv.obfuscate.nopeek import distance_correlation, train_nopeek
from advpriv.obfuscate.train import train

TINY = TrainConfig(width=1 / 16, fc=16, pretrain_epochs=2, attacker_epochs=1, epochs=1, batch_size=8, lr=3e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = load_attributes(write_dataset(tmp_path_factory.mktemp("faces"), n=40))
    return load_run(train(data, TINY, tmp_path_factory.mktemp("run"))), data


def test_fresh_attackers_report_every_encoder(trained):
    run, data = trained
    messages: list[str] = []
    reports, recon = evaluate_run(run, data, AttackConfig(epochs=1), montage_count=3, progress=messages.append)
    assert [r.name for r in reports] == ["utility_only", "obfuscator", "noise"]
    for r in reports:
        assert 0 <= r.utility_accuracy <= 1 and 0 <= r.private_accuracy <= 1 and 0.5 <= r.majority_rate <= 1
        assert -1 <= r.ms_ssim <= 1 and -1 <= r.ssim <= 1 and r.psnr > 0
    assert reports[2].noise_std > 0 and reports[0].noise_std is None
    assert set(recon) == {"original", "utility_only", "obfuscator", "noise"}
    assert all(v.shape == (3, 3, *data.image_size) for v in recon.values())
    assert any("fresh attackers" in m for m in messages)


class _LowerHalfBrighter(torch.nn.Module):
    """A perfect 'Smiling' classifier for the synthetic faces: the lower half is brighter."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[-2] // 2
        return 100 * (x[..., h:, :].mean((1, 2, 3)) - x[..., :h, :].mean((1, 2, 3)) - 0.2)


def test_noise_calibration_lowers_utility_to_the_target(trained):
    _, data = trained
    E, C = torch.nn.Identity(), _LowerHalfBrighter()
    idx, labels = torch.arange(len(data)), data.labels_of("Smiling")
    assert accuracy(E, C, data, idx, labels) == 1.0
    std = calibrate_noise(E, C, data, idx, labels, target=0.75)
    torch.manual_seed(0)
    assert 0.6 <= accuracy(NoisyEncoder(E, std), C, data, idx, labels) <= 0.9
    assert calibrate_noise(E, C, data, idx, labels, target=1.01) < std


def test_nopeek_baseline_trains_and_is_evaluated(trained, tmp_path):
    run, data = trained
    x = torch.rand(16, 3, 8, 8)
    assert float(distance_correlation(x, x * 2 + 1)) == pytest.approx(1.0, abs=1e-4)
    assert float(distance_correlation(x, torch.rand(16, 5))) < 0.9
    seen = []
    path = train_nopeek(data, run.config, run.folder, alpha=1.0, on_step=lambda e, d, t, l: seen.append(l))
    assert path.is_file() and "dCor" in seen[-1]
    reports, _ = evaluate_run(run, data, AttackConfig(epochs=1), montage_count=2, names=("nopeek",))
    assert [r.name for r in reports] == ["nopeek"]


def test_majority_rate():
    assert majority_rate(torch.tensor([1.0, 1, 0]), torch.tensor([0.0, 0, 1, 1])) == 0.5
    assert majority_rate(torch.tensor([0.0, 0, 1]), torch.tensor([0.0, 0, 0, 1])) == 0.75


def test_montage_png(tmp_path):
    rows = {"original": torch.rand(4, 3, 36, 32), "obfuscator": torch.zeros(4, 3, 36, 32)}
    path = save_montage(rows, tmp_path / "m.png")
    with Image.open(path) as im:
        assert im.size[1] == 2 * (36 + 2) and im.size[0] > 4 * 32


def test_wider_fresh_attackers_read_the_narrow_encoders_features(trained):
    run, data = trained
    E, idx = run.encoder("utility_only"), torch.arange(16)
    attack = AttackConfig(epochs=1, width=0.125, fc=8, decoder_epochs=2)
    D = fresh_decoder(E, data, idx, run.config.widths, attack)
    P = fresh_classifier(E, data, idx, data.labels_of("Male"), run.config.widths, attack)
    assert D.stage1[1].num_features == run.config.widths.feature_channels
    assert (D.stage1[2].out_channels, D.stage1[5].out_channels) == (16, 8)  # width 1/8: c2→c2, c2→c1
    assert P.head[-1].in_features == 8
    with torch.no_grad():
        z = E(data.batch(idx[:2]))
        assert D(z).shape == (2, 3, *data.image_size) and P(z).shape == (2,)


def test_cached_features_equal_the_encoders_and_noise_is_drawn_afresh(trained):
    run, data = trained
    E, idx = run.encoder("utility_only"), torch.arange(10)
    features = frozen_features(E, data, idx)
    with torch.no_grad():
        assert torch.allclose(features(idx[3:6]), E(data.batch(idx[3:6])), atol=1e-5)
        assert torch.allclose(features(torch.tensor([20])), E(data.batch(torch.tensor([20]))), atol=1e-5)
    noisy = frozen_features(NoisyEncoder(E, 0.5), data, idx)
    a, b = noisy(idx[:2]), noisy(idx[:2])
    assert not torch.equal(a, b) and float((a - b).std()) == pytest.approx(0.5 * 2**0.5, rel=0.2)
    uncached = frozen_features(E, data, idx, cache_mb=0)
    assert torch.allclose(uncached(idx[:2]), features(idx[:2]), atol=1e-5)
