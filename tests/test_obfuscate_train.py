"""Networks and every training step of DeepObfuscator, checkpoints and resume, on tiny synthetic data."""

from __future__ import annotations

import pytest
import torch
from test_obfuscate_data import one_thread, write_dataset  # noqa: F401 (autouse fixture)

from advpriv.obfuscate.checkpoint import OBFUSCATOR, UTILITY_ONLY, build_parties, load_run, load_weights
from advpriv.obfuscate.config import TrainConfig
from advpriv.obfuscate.data import DataError, load_attributes
from advpriv.obfuscate.networks import Classifier, Decoder, Encoder, Widths, pooled_size
from advpriv.obfuscate.train import ConfigMismatch, Parties, train

TINY = dict(width=1 / 16, fc=16, pretrain_epochs=1, attacker_epochs=1, epochs=1, batch_size=8)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_attributes(write_dataset(tmp_path_factory.mktemp("faces"), n=24))


def test_network_shapes_follow_the_paper():
    w = Widths()
    assert w.channels() == (64, 128, 256, 512, 512)
    E, C = Encoder(w), Classifier(w, (109, 89))
    assert [m.out_channels for m in E.modules() if isinstance(m, torch.nn.Conv2d)] == [64, 64, 128, 128]
    assert not any(m.return_indices for m in E.modules() if isinstance(m, torch.nn.MaxPool2d))
    assert pooled_size((109, 89), 5) == (3, 2) and C.head[1].in_features == 512 * 3 * 2
    assert C.head[1].out_features == C.head[4].out_features == 4096


def test_tiny_networks_run_and_decoder_is_clamped():
    w, size = Widths(1 / 16, 16), (36, 32)
    z = Encoder(w)(torch.rand(2, 3, *size))
    assert z.shape == (2, 8, 9, 8)
    assert Classifier(w, size)(z).shape == (2,)
    with torch.no_grad():
        y = Decoder(w, size)(z * 100)
    assert y.shape == (2, 3, *size) and 0 <= float(y.min()) and float(y.max()) <= 1
    small = Classifier(w, (16, 16))  # 4×4 features: the last block's pool is skipped at 1×1
    assert isinstance(small.features[-1], torch.nn.Identity) and small(torch.rand(2, 8, 4, 4)).shape == (2,)


def test_lambda_schedule():
    cfg = TrainConfig()
    assert [cfg.lam_at(e) for e in (0, 9)] == [10.0, 10.0] and cfg.lam_at(10) == pytest.approx(8.0)
    assert cfg.lam_at(19) < cfg.lam_at(10)
    fast = TrainConfig(pretrain_lr=1e-3)
    assert [fast.lr_of(s) for s in ("utility", "adversarial")] == [1e-3, 1e-4] and cfg.lr_of("utility") == 1e-4


def _changed(parties: Parties, before: dict[str, list[torch.Tensor]]) -> set[str]:
    return {k for k, m in parties.nets.items() if any(not torch.equal(p, q) for p, q in zip(m.parameters(), before[k]))}


@pytest.mark.parametrize("stage,i,expected", [
    ("utility", 0, {"E", "C"}), ("decoder", 0, {"R"}), ("attribute", 0, {"P"}),
    ("adversarial", 0, {"E"}), ("adversarial", 1, {"E"}), ("adversarial", 2, {"E"}),
    ("adversarial", 3, {"R", "P"}), ("adversarial", 4, {"C"}), ("adversarial", 5, {"E"}),
])
@pytest.mark.parametrize("private_loss", ["negative_bce", "entropy"])
def test_each_step_updates_only_its_party(data, stage, i, expected, private_loss):
    torch.manual_seed(0)
    parties = Parties(TrainConfig(**TINY, image_size=data.image_size, private_loss=private_loss))
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in parties.nets.items()}
    idx = torch.arange(8)
    losses = getattr(parties, stage)(data.batch(idx), data.labels_of("Smiling")[idx], data.labels_of("Male")[idx], i, 10.0)
    assert _changed(parties, before) == expected
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_adversarial_encoder_steps_push_against_the_adversaries(data):
    """Step 1 raises the reconstruction loss and step 2 the attribute loss of the fixed adversaries."""
    torch.manual_seed(0)
    cfg = TrainConfig(**{**TINY, "lr": 1e-2}, image_size=data.image_size)
    parties = Parties(cfg)
    idx = torch.arange(16)
    x, yu, yp = data.batch(idx), data.labels_of("Smiling")[idx], data.labels_of("Male")[idx]
    for step, key in ((1, "L_R"), (2, "L_P")):
        first = getattr(parties, "adversarial")(x, yu, yp, step, 10.0)[key]
        for _ in range(3):
            last = parties.adversarial(x, yu, yp, step, 10.0)[key]
        assert last > first


def test_train_writes_both_encoders_and_initialises_P_from_C(data, tmp_path):
    cfg = TrainConfig(**{**TINY, "epochs": 0})
    out = train(data, cfg, tmp_path / "run")
    run = load_run(out)
    assert run.config.image_size == data.image_size
    assert (out / UTILITY_ONLY).is_file() and (out / OBFUSCATOR).is_file()
    final = build_parties(run.config)
    load_weights(out / OBFUSCATOR, final)
    # P was copied from C, then trained one epoch on its own: same shapes, different head values.
    assert not torch.equal(final["P"].head[-1].weight, final["C"].head[-1].weight)
    assert torch.equal(run.encoder("utility_only").features[0].weight, run.encoder("obfuscator").features[0].weight)


def test_resume_after_interruption_matches_an_uninterrupted_run(data, tmp_path):
    cfg = TrainConfig(**{**TINY, "pretrain_epochs": 2, "epochs": 2})
    train(data, cfg, tmp_path / "full")
    seen: list[tuple[str, int]] = []

    def interrupt(stage, epoch, done, total, losses):
        seen.append((stage, epoch))
        if stage == "attribute":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, cfg, tmp_path / "cut", on_step=interrupt)
    resumed: list[tuple[str, int]] = []
    train(data, cfg, tmp_path / "cut", on_step=lambda s, e, d, t, l: resumed.append((s, e)))
    assert resumed[0] == ("attribute", 0) and ("utility", 0) not in resumed
    a, b = load_run(tmp_path / "full").encoder(), load_run(tmp_path / "cut").encoder()
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-6)
    assert list(dict.fromkeys(seen + resumed)) == [
        ("utility", 0), ("utility", 1), ("decoder", 0), ("attribute", 0), ("adversarial", 0), ("adversarial", 1)]


def test_resume_refuses_a_different_config_and_restart_clears(data, tmp_path):
    cfg = TrainConfig(**TINY)
    train(data, cfg, tmp_path / "run")
    with pytest.raises(ConfigMismatch, match="different configuration.*--restart"):
        train(data, TrainConfig(**{**TINY, "lam": 1.0}), tmp_path / "run")
    train(data, TrainConfig(**{**TINY, "lam": 1.0, "pretrain_epochs": 0, "attacker_epochs": 0, "epochs": 0}),
          tmp_path / "run", restart=True)
    assert load_run(tmp_path / "run").config.lam == 1.0


def test_bad_attribute_choices_are_refused(data, tmp_path):
    with pytest.raises(DataError, match="no attribute named 'Happy'"):
        train(data, TrainConfig(**TINY, utility="Happy"), tmp_path / "a")
    with pytest.raises(DataError, match="'Male' is both a utility and the private"):
        train(data, TrainConfig(**TINY, utility="Male", private="Male"), tmp_path / "b")
    assert not (tmp_path / "a").exists()
    small = load_attributes(write_dataset(tmp_path / "small", n=4, size=(24, 24)))
    with pytest.raises(DataError, match="at least 32×32.*--image-size"):
        train(small, TrainConfig(**TINY), tmp_path / "c")


def test_entropy_objective_pulls_the_adversary_toward_one_half(data):
    """With private_loss="entropy", step 2 lowers BCE(P(E(x)), ½): P becomes less sure, not confidently wrong."""
    torch.manual_seed(0)
    parties = Parties(TrainConfig(**TINY, image_size=data.image_size, private_loss="entropy", lr=1e-2))
    idx = torch.arange(16)
    x, yu, yp = data.batch(idx), data.labels_of("Smiling")[idx], data.labels_of("Male")[idx]
    with torch.no_grad():
        parties.P.head[-1].bias.fill_(3.0)  # a very sure adversary
    parties.E.eval(), parties.P.eval()
    unsure = lambda: float(torch.nn.functional.binary_cross_entropy_with_logits(  # noqa: E731
        parties.P(parties.E(x)), torch.full_like(yp, 0.5)))
    before = unsure()
    for _ in range(5):
        losses = parties.adversarial(x, yu, yp, 2, 10.0)
    assert "L_P_unsure" in losses and unsure() < before


def test_unknown_private_loss_is_refused():
    with pytest.raises(ValueError, match="negative_bce, entropy"):
        TrainConfig(private_loss="maximum")


def test_attackers_are_refreshed_before_every_kth_adversarial_epoch(data, tmp_path):
    cfg = TrainConfig(**{**TINY, "epochs": 4, "refresh_every": 2})
    assert [cfg.refreshes_at(e) for e in range(5)] == [False, False, True, False, True]
    seen: list[tuple[str, int]] = []
    train(data, cfg, tmp_path / "run", on_step=lambda s, e, d, t, l: seen.append((s, e)))
    assert list(dict.fromkeys(seen))[3:] == [
        ("adversarial", 0), ("adversarial", 1), ("decoder", 2), ("attribute", 2), ("adversarial", 2), ("adversarial", 3)]
    with pytest.raises(ValueError, match="refresh_every"):
        TrainConfig(refresh_every=-1)


def test_restarting_P_copies_C_and_resets_its_optimiser(data):
    parties = Parties(TrainConfig(**TINY, image_size=data.image_size))
    idx = torch.arange(8)
    parties.attribute(data.batch(idx), data.labels_of("Smiling")[idx], data.labels_of("Male")[idx], 0, 0.0)
    assert parties.opts["P"].state
    parties.restart_P()
    assert torch.equal(parties.P.head[-1].weight, parties.C.head[-1].weight) and not parties.opts["P"].state
