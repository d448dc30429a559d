"""Split depth, bottleneck, pooling, noise, VIB and presets: networks, tiny training runs, resume, evaluation, plot."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from test_obfuscate_data import one_thread, write_dataset  # noqa: F401 (autouse fixture)

from advpriv.obfuscate.checkpoint import load_run
from advpriv.obfuscate.config import PRESETS, TrainConfig
from advpriv.obfuscate.data import load_attributes, split_indices
from advpriv.obfuscate.evaluate import AttackConfig, evaluate_encoder, evaluate_run, frozen_features
from advpriv.obfuscate.frontier import frontier_figure, plot_frontier
from advpriv.obfuscate.networks import Classifier, Decoder, Encoder, SplitPoint, Widths
from advpriv.obfuscate.train import Parties, train

# 64 images, 51 of them in the training split: one epoch of batch 32 is 2 steps.
TINY = dict(width=1 / 16, fc=16, pretrain_epochs=1, attacker_epochs=1, epochs=1, batch_size=32, lr=1e-3)
SETTINGS = {
    "split 3": dict(split=3),
    "bottleneck": dict(bottleneck=4),
    "pooled bottleneck + noise": dict(split=4, bottleneck=4, pool=(1, 1), noise=0.5),
    "vib (learned noise)": dict(split=4, bottleneck=4, pool=(2, 1), noise=0.5, vib=0.01),
    "adversarial on noisy features": dict(split=4, bottleneck=4, pool=(1, 1), noise=1.0, private_loss="entropy"),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_attributes(write_dataset(tmp_path_factory.mktemp("faces"), n=64))


@pytest.mark.parametrize("cut", [SplitPoint(block=1), SplitPoint(block=3, bottleneck=4),
                                 SplitPoint(block=4, bottleneck=8, pool=(1, 1), noise=0.5),
                                 SplitPoint(block=5, bottleneck=2, pool=(1, 1), noise=0.5, learn_noise=True)])
def test_every_split_point_fits_its_cloud_and_decoder(cut):
    w, size = Widths(1 / 16, 16), (36, 32)
    E = Encoder(w, cut).eval()
    z = E(torch.rand(3, 3, *size))
    assert tuple(z.shape[1:]) == cut.feature_shape(w, size)
    assert Classifier(w, size, split=cut)(z).shape == (3,)
    assert Decoder(w, size, split=cut)(z).shape == (3, 3, *size)


def test_noise_is_drawn_on_every_call_and_learned_only_with_vib():
    cut = SplitPoint(block=2, bottleneck=4, noise=0.5)
    E, x = Encoder(Widths(1 / 16), cut).eval(), torch.rand(2, 3, 36, 32)
    with torch.no_grad():
        assert not torch.equal(E(x), E(x))
        assert float((E(x) - E.clean(x)).std()) == pytest.approx(0.5, rel=0.3)
    assert not any("log_std" in n for n, _ in E.named_parameters())
    learned = Encoder(Widths(1 / 16), SplitPoint(2, 4, noise=0.5, learn_noise=True))
    assert [n for n, _ in learned.named_parameters() if "log_std" in n] == ["bottleneck.log_std"]
    assert float(learned.bottleneck.rate(torch.zeros(2, 4, 9, 8))) > 0  # σ = 0.5 ≠ 1 costs rate


@pytest.mark.parametrize("bad,phrase", [(dict(split=6), "blocks 1 to 5"), (dict(noise=0.5), "bottleneck"),
                                        (dict(pool=(1, 1)), "bottleneck"), (dict(bottleneck=4, vib=0.1), "noise"),
                                        (dict(vib=-1.0), "vib")])
def test_bad_split_settings_are_refused(bad, phrase):
    with pytest.raises(ValueError, match=phrase):
        TrainConfig(**bad)


def test_presets_and_config_round_trip():
    assert TrainConfig.preset("paper") == TrainConfig()
    private = TrainConfig.preset("private", seed=3)
    assert private.seed == 3 and private.split_point.pool == PRESETS["private"]["pool"]
    assert TrainConfig.from_json(private.to_json()) == private
    with pytest.raises(ValueError, match="no preset named 'fast'.*paper"):
        TrainConfig.preset("fast")


@pytest.mark.parametrize("name", SETTINGS)
def test_each_setting_trains_two_steps(data, tmp_path, name):
    steps: list[tuple[str, dict]] = []
    cfg = TrainConfig(**TINY, **SETTINGS[name])
    out = train(data, cfg, tmp_path / "run", on_step=lambda s, e, d, t, losses: steps.append((s, losses)))
    assert [s for s, _ in steps].count("utility") == 2 and [s for s, _ in steps].count("adversarial") == 2
    assert all(torch.isfinite(torch.tensor(v)) for _, losses in steps for v in losses.values())
    assert ("rate" in steps[0][1]) == (cfg.vib > 0)
    run = load_run(out)
    assert run.config == TrainConfig(**TINY, **SETTINGS[name], image_size=data.image_size)
    z = run.encoder()(data.batch(torch.arange(2)))
    assert tuple(z.shape[1:]) == run.feature_shape


def test_vib_learns_the_noise_scale(data):
    torch.manual_seed(0)
    parties = Parties(TrainConfig(**TINY, **SETTINGS["vib (learned noise)"], image_size=data.image_size))
    before = parties.E.bottleneck.log_std.detach().clone()
    idx = torch.arange(32)
    parties.utility(data.batch(idx), data.labels_of("Smiling")[idx], data.labels_of("Male")[idx], 0, 0.0)
    assert not torch.equal(before, parties.E.bottleneck.log_std)


def test_resume_with_the_new_settings_matches_an_uninterrupted_run(data, tmp_path):
    cfg = TrainConfig(**{**TINY, "pretrain_epochs": 2}, **SETTINGS["vib (learned noise)"])
    train(data, cfg, tmp_path / "full")

    def interrupt(stage, epoch, done, total, losses):
        if stage == "decoder":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, cfg, tmp_path / "cut", on_step=interrupt)
    train(data, cfg, tmp_path / "cut")
    a, b = load_run(tmp_path / "full").encoder(), load_run(tmp_path / "cut").encoder()
    assert b.bottleneck.log_std.requires_grad
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-6), name


def test_fresh_attackers_stop_early_and_a_linear_probe_is_reported(data, tmp_path):
    run = load_run(train(data, TrainConfig(**TINY, **SETTINGS["pooled bottleneck + noise"]), tmp_path / "run"))
    parts, cfg = run.parties("obfuscator"), run.config
    splits = split_indices(data, cfg.seed)
    attack = AttackConfig(epochs=6, patience=1, batch_size=16)
    report, decoder = evaluate_encoder("obfuscator", parts["E"], parts["C"], data, splits,
                                       data.labels_of("Smiling"), data.labels_of("Male"), cfg.widths, attack,
                                       cfg.split_point)
    assert 0 <= report.linear_probe_accuracy <= 1
    assert set(report.attacker_epochs) == {"decoder", "classifier", "linear_probe", "averaging"}  # noisy: K = 16
    assert all(1 <= n <= 6 for n in report.attacker_epochs.values())
    assert decoder.expand is not None
    reports, _ = evaluate_run(run, data, AttackConfig(epochs=1), montage_count=2, names=("utility_only", "noise"))
    assert reports[1].noise_std > 0


def test_noisy_encoders_are_cached_clean_and_noised_per_call(data):
    E = Encoder(Widths(1 / 16), SplitPoint(4, 4, (1, 1), noise=0.5)).eval()
    idx = torch.arange(8)
    features = frozen_features(E, data, idx)
    assert not torch.equal(features(idx[:2]), features(idx[:2]))
    with torch.no_grad():
        clean = E.clean(data.batch(idx[:2]))
    assert float((features(idx[:2]) - clean).std()) == pytest.approx(0.5, rel=0.5)


def _point(name: str, series: str, utility: float, probe: float | None = 0.6) -> dict:
    report = dict(utility_accuracy=utility, private_accuracy=0.7, linear_probe_accuracy=probe, majority_rate=0.55,
                  ms_ssim=0.4)
    return dict(name=name, series=series, encoder_ms=1.5, feature_bytes_fp16=16, report=report)


def test_frontier_plot_has_every_series_and_labels(tmp_path):
    points = [_point("d8", "bottleneck + noise", 0.9), _point("d8-noise1", "bottleneck + noise", 0.88),
              _point("noise σ 1.1", "noise baseline", 0.85, None), _point("α 0.5", "NoPeek", 0.88, None)]
    fig = frontier_figure(points, utility="smiling", private="gender", presets={"d8": "private"})
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes[:2]]
    assert legends == [["bottleneck + noise", "noise baseline", "NoPeek",
                        "majority rate 0.550 (always guessing the commoner gender value)",
                        "majority + 5 points (target)", "linear probe (hollow)"],
                       ["bottleneck + noise", "noise baseline", "NoPeek", "MS-SSIM 0.35 (target)"]]
    assert "gender" in fig.axes[0].get_ylabel() and "smiling" in fig.axes[1].get_xlabel() and fig.get_suptitle()
    # numbered points: two at the same place share one label; the preset is named at its point and in the key
    assert sorted(t.get_text() for t in fig.axes[1].texts) == ["1 = private", "2, 4", "3"]
    key = "\n".join(t.get_text() for t in fig.axes[2].texts)
    assert " 1  d8 = the `private` preset (bottleneck + noise): 1.5 ms, 16 B" in key and "B: bytes of fp16" in key
    path = plot_frontier(points, tmp_path / "f.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 1000


def test_a_noisy_encoder_exports_with_its_noise_and_is_checked_without(tmp_path):
    import onnxruntime as ort

    from advpriv.obfuscate.export import export_checked

    E = Encoder(Widths(1 / 16), SplitPoint(4, 4, (1, 1), noise=0.5)).eval()
    x = torch.rand(2, 3, 36, 32)
    assert export_checked(E, (36, 32), tmp_path / "e.onnx", x) < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["e.onnx"]
    session = ort.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    a, b = (session.run(None, {"image": x.numpy()})[0] for _ in range(2))
    assert a.shape == (2, 4, 1, 1) and abs(a - b).max() > 0  # fresh noise on the device, every call
