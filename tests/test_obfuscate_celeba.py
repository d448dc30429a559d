"""The obfuscator on the real shared CelebA subset: loading, attributes, and one tiny training + evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_obfuscate_data import one_thread  # noqa: F401 (autouse fixture)

from advpriv.obfuscate import AttackConfig, TrainConfig, evaluate_run, load_attributes, load_run, split_indices, train

CELEBA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba-attr"
pytestmark = pytest.mark.skipif(not CELEBA.is_dir(), reason=f"{CELEBA} is absent (shared CelebA subset needed)")


@pytest.fixture(scope="module")
def faces():
    return load_attributes(CELEBA, limit=48)


def test_shared_subset_loads_with_the_celeba_attributes(faces):
    assert faces.image_size == (109, 89) and len(faces) == 48 and len(faces.names) == 40
    assert faces.files[0] == "000001.jpg"
    assert 0 < float(faces.labels_of("Smiling").mean()) < 1 and 0 < float(faces.labels_of("Male").mean()) < 1
    assert [len(v) for v in split_indices(faces).values()] == [38, 5, 5]


def test_tiny_run_on_real_faces(tmp_path):
    faces = load_attributes(CELEBA, image_size=(44, 36), limit=48)
    cfg = TrainConfig(width=1 / 16, fc=16, image_size=(44, 36), pretrain_epochs=1, attacker_epochs=1, epochs=1, limit=48)
    run = load_run(train(faces, cfg, tmp_path))
    reports, recon = evaluate_run(run, faces, AttackConfig(epochs=1), montage_count=2)
    assert [r.name for r in reports] == ["utility_only", "obfuscator", "noise"]
    assert recon["obfuscator"].shape == (2, 3, 44, 36)
