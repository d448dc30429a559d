"""Issue 24: splits by identity (file or pseudo-identities), several utility tasks, the averaging attack, attackers
of another family."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from test_obfuscate_data import one_thread, write_dataset  # noqa: F401 (autouse fixture)

from advpriv.obfuscate import AttackConfig, TrainConfig, evaluate_run, load_attributes, load_run, train
from advpriv.obfuscate.attackers import ResNetAttacker, UpsamplingDecoder
from advpriv.obfuscate.baselines import Averaged, task_accuracies
from advpriv.obfuscate.data import CELEBA_IDENTITY, DataError, read_identities, split_indices
from advpriv.obfuscate.evaluate import evaluate_encoder, is_noisy, train_other_family
from advpriv.obfuscate.identity import group_descriptors, grouping_check, pseudo_identities, write_identities
from advpriv.obfuscate.networks import Encoder, SplitPoint, Widths

TINY = dict(width=1 / 16, fc=16, pretrain_epochs=1, attacker_epochs=1, epochs=1, batch_size=8, lr=1e-3)
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """40 synthetic faces of 10 people (4 photos each), with CelebA's identity file."""
    root = write_dataset(tmp_path_factory.mktemp("ids"), n=40)
    (root / CELEBA_IDENTITY).write_text("".join(f"{i + 1:06d}.jpg {100 + i // 4}\n" for i in range(40)))
    return root


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_by_identity_keeps_every_person_in_one_split(root, seed):
    data = load_attributes(root)
    splits = split_indices(data, seed, (0.6, 0.1), by_identity=True)
    people = [set(data.identities[v].tolist()) for v in splits.values()]
    assert not (people[0] & people[1] or people[0] & people[2] or people[1] & people[2])
    assert sorted(torch.cat(list(splits.values())).tolist()) == list(range(40))
    assert len(splits["train"]) == 24 and len(splits["test"]) >= 8  # whole people, near the fractions
    by_image = split_indices(data, seed, (0.6, 0.1))
    assert set(data.identities[by_image["train"]].tolist()) & set(data.identities[by_image["test"]].tolist())


def test_identities_are_required_and_checked(tmp_path, root):
    data = load_attributes(write_dataset(tmp_path / "plain", n=10))
    assert data.identities is None
    with pytest.raises(DataError, match="identity_CelebA.txt"):
        split_indices(data, by_identity=True)
    (tmp_path / "ids.txt").write_text("000001.jpg 3\n")
    with pytest.raises(DataError, match="9 image"):
        read_identities(tmp_path / "ids.txt", data.files)
    (tmp_path / "ids.txt").write_text("000001.jpg three\n")
    with pytest.raises(DataError, match="line 1"):
        read_identities(tmp_path / "ids.txt", data.files)


def test_config_split_settings(root):
    cfg = TrainConfig(split_by="identity", fractions=(0.6, 0.1))
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert TrainConfig.from_json("{}").split_by == "image"  # runs saved before issue 24 still load
    assert cfg.splits(load_attributes(root))["test"].numel() >= 12
    for bad, phrase in ((dict(split_by="person"), "split_by"), (dict(fractions=(0.9, 0.2)), "fractions")):
        with pytest.raises(ValueError, match=phrase):
            TrainConfig(**bad)


def test_grouping_recovers_people_and_is_cached(tmp_path):
    torch.manual_seed(0)
    centres = torch.randn(5, 128) * 0.2
    people = torch.arange(5).repeat_interleave(4)
    descriptors = centres[people] + 0.01 * torch.randn(20, 128)
    groups = group_descriptors(descriptors, threshold=0.6)
    check = grouping_check(groups, people)
    assert check["same_person_split"] == 0 and check["different_people_merged"] == 0
    assert check["people_in_one_group"] == 1
    assert group_descriptors(descriptors, threshold=100).unique().tolist() == [0]
    data = load_attributes(write_dataset(tmp_path / "d", n=6))
    write_identities(tmp_path / "cache.txt", data.files, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert pseudo_identities(data, tmp_path / "cache.txt").tolist() == [0, 0, 1, 1, 2, 2]  # read, not recomputed


@pytest.mark.skipif(not (SHARED / "celeba-attr").is_dir(), reason="needs ../shared/data/celeba-attr")
def test_pseudo_identities_of_real_faces(tmp_path):
    data = load_attributes(SHARED / "celeba-attr", limit=12)
    ids = pseudo_identities(data, tmp_path / "ids.txt")
    assert len(ids) == 12 and read_identities(tmp_path / "ids.txt", data.files).tolist() == ids.tolist()
    assert len(ids.unique()) >= 6  # CelebA's first images are mostly different people


def test_several_utility_tasks_train_and_report_each(root, tmp_path):
    data = load_attributes(root)
    assert data.labels_of("Smiling, Young").shape == (40, 2)
    cfg = TrainConfig(**TINY, utility="Smiling,Young", split_by="identity", fractions=(0.6, 0.1))
    run = load_run(train(data, cfg, tmp_path / "run"))  # the adversarial stage starts P from C's layers
    parts = run.parties("obfuscator")
    splits = cfg.splits(data)
    per_task = task_accuracies(parts["E"], parts["C"], data, splits["test"], data.labels_of(cfg.utility))
    assert per_task.shape == (2,)
    reports, _ = evaluate_run(run, data, AttackConfig(epochs=1), montage_count=2, names=("obfuscator",))
    assert reports[0].utility_accuracies == pytest.approx(per_task.tolist())
    assert reports[0].utility_accuracy == pytest.approx(float(per_task.mean()))
    from advpriv.serve.features import CloudClassifier

    cloud = CloudClassifier(tmp_path / "run")
    (answer,) = cloud.predict(torch.zeros(1, *cloud.feature_shape).numpy())
    assert sorted(answer) == ["Smiling", "Young", "probabilities"] and sorted(answer["probabilities"]) == ["Smiling", "Young"]
    assert all(answer[task] == (p >= 0.5) for task, p in answer["probabilities"].items())
    with pytest.raises(DataError, match="both a utility and the private"):
        train(data, TrainConfig(**TINY, utility="Smiling,Male"), tmp_path / "bad")


def test_averaging_attack_sees_less_noise(root):
    data = load_attributes(root)
    cut = SplitPoint(4, 4, (1, 1), noise=1.0)
    E = Encoder(Widths(1 / 16), cut).eval()
    x = data.batch(torch.arange(8))
    assert is_noisy(E, x) and not is_noisy(Encoder(Widths(1 / 16), SplitPoint(4, 4, (1, 1))), x)
    torch.manual_seed(0)
    with torch.no_grad():  # 20 draws of 8 faces: the std's estimate is within a few percent
        spread = [torch.cat([enc(x) - E.clean(x) for _ in range(20)]).std() for enc in (E, Averaged(E, 16))]
    assert 3.4 < float(spread[0] / spread[1]) < 4.6  # √16 = 4
    splits = split_indices(data, 0, (0.6, 0.1), by_identity=True)
    cloud = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1), torch.nn.Flatten(0))
    report, decoder = evaluate_encoder("e", E, cloud, data, splits, data.labels_of("Smiling"), data.labels_of("Male"),
                                       Widths(1 / 16, 16), AttackConfig(epochs=1), cut, decoder=False)
    assert decoder is None and report.averaging_k == 16 and report.attacker_epochs["averaging"] == 1
    assert 0 <= report.averaging_accuracy <= 1 and math.isnan(report.ms_ssim)


@pytest.mark.parametrize("shape", [(8, 1, 1), (4, 9, 8)])
def test_attackers_of_another_family_read_any_features(shape):
    z = torch.rand(3, *shape)
    assert ResNetAttacker(shape[0], width=8)(z).shape == (3,)
    assert UpsamplingDecoder(shape, (36, 32), width=16)(z).shape == (3, 3, 36, 32)


def test_other_family_attackers_train(root):
    data = load_attributes(root)
    E = Encoder(Widths(1 / 16), SplitPoint(4, 4, (1, 1))).eval()
    resnet, decoder = train_other_family(E, data, torch.arange(30), data.labels_of("Male"), AttackConfig(epochs=1),
                                         torch.arange(30, 40))
    assert not resnet.training and not decoder.training
    out = decoder(E(data.batch(torch.arange(2))))
    assert out.shape == (2, 3, 36, 32) and 0 <= float(out.min()) and float(out.max()) <= 1
    alone, none = train_other_family(E, data, torch.arange(30), data.labels_of("Male"), AttackConfig(epochs=1),
                                     decoder=False)
    assert none is None and not alone.training


def test_command_line_splits_by_identity(root, tmp_path):
    from typer.testing import CliRunner

    from advpriv.obfuscate.cli import app

    tiny = ["--width", "0.0625", "--fc", "16", "--pretrain-epochs", "1", "--batch-size", "8", "--threads", "1"]
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(root), "--out", str(tmp_path / "run"), *tiny, "--split-by", "identity",
                            "--test-fraction", "0.3", "--utility", "Smiling,Young"])
    assert r.exit_code == 0, r.output
    cfg = TrainConfig.load(tmp_path / "run" / "config.json")
    assert (cfg.split_by, tuple(cfg.fractions), cfg.utility) == ("identity", (0.6, 0.1), "Smiling,Young")
    r = runner.invoke(app, ["train", str(root), "--out", str(tmp_path / "x"), *tiny, "--split-by", "face"])
    assert r.exit_code == 2 and "split_by 'face' is unknown" in r.output
