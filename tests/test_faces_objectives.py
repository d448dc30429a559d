"""Face objectives, the front door, and the judges, on real photos with real dlib-bin and the real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("dlib", reason="face objectives need dlib-bin (pip install dlib-bin)")

from advpriv.faces import NoFaceError, face_objective  # noqa: E402
from advpriv.faces.embedders import FaceEmbedder, dlib_embedder, torchscript_embedder  # noqa: E402
from advpriv.faces.judges import DlibJudge, OnnxJudge, equal_error_threshold, judge_faces  # noqa: E402
from advpriv.protect.mnd import MNDConfig, mnd  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CELEBA_ID = SHARED / "data" / "celeba-id"
WILD = SHARED / "data" / "faces-wild" / "images"
MOBILEFACENET = SHARED / "models" / "mobilefacenet.onnx"
needs_shared = pytest.mark.skipif(not CELEBA_ID.is_dir(), reason=f"{CELEBA_ID} is absent")


def _load(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1).float() / 255


def _photos(identity: str, count: int) -> list[torch.Tensor]:
    return [_load(p) for p in sorted((CELEBA_ID / identity).glob("*.jpg"))[:count]]




def test_no_face_gives_a_clear_error() -> None:
    noise = torch.rand(3, 120, 120, generator=torch.Generator().manual_seed(0))
    with pytest.raises(NoFaceError, match="no face found in the photo.*--aligned on the command line, aligned=True"):
        face_objective(noise)


def test_unknown_mode_and_missing_target_are_explained() -> None:
    chip = torch.rand(3, 150, 150)
    with pytest.raises(ValueError, match="mode must be one of"):
        face_objective(chip, mode="hide", aligned=True)
    with pytest.raises(ValueError, match="as_images"):
        face_objective(chip, mode="impersonate", aligned=True)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ensemble_with_a_torchscript_embedder(tmp_path: Path) -> None:
    toy = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    path = tmp_path / "toy.pt"
    torch.jit.script(toy).save(str(path))
    embedders = [dlib_embedder(), torchscript_embedder(path, threshold=0.3, metric="cosine", input_size=112, trust_code=True)]
    chip = torch.rand(3, 150, 150, requires_grad=True)
    objective, faces = face_objective(chip, embedders=embedders, aligned=True)
    loss, success = objective(chip[None])
    loss.sum().backward()
    assert len(faces) == 1 and loss.shape == (1,) and not success.item()
    assert chip.grad is not None and chip.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="metric"):
        FaceEmbedder(toy, 0.3, metric="dot")


@needs_shared
def test_group_photo_objective_covers_both_faces() -> None:
    objective, faces = face_objective(_load(WILD / "008064.jpg"))
    assert len(faces) == 2 and objective.owner.tolist() == [0, 0]


@needs_shared
def test_impersonation_starts_unmatched_and_has_a_gradient() -> None:
    probe = _load(sorted((CELEBA_ID / "10010").glob("*.jpg"))[0]).requires_grad_()
    objective, _ = face_objective(probe, mode="impersonate", as_images=_photos("10036", 3))
    loss, success = objective(probe[None])
    loss.sum().backward()
    assert not success.item() and loss.item() > 0 and probe.grad.abs().sum() > 0


@needs_shared
def test_dodging_with_mnd_fools_the_real_dlib_pipeline(one_thread: None) -> None:
    clean = _photos("10050", 1)[0]
    objective, faces = face_objective(clean, margin=0.05)
    result = mnd(clean[None], objective, MNDConfig(steps=40))
    assert result.success.item()
    psnr = 10 * torch.log10(1 / (result.images[0] - clean).square().mean())
    (verdict,) = judge_faces(DlibJudge(), result.images[0], clean)
    assert verdict.detected and not verdict.matches and psnr > 40


@needs_shared
def test_a_selected_photo_is_judged_as_if_alone() -> None:
    from advpriv.faces.detect import find_faces
    from advpriv.faces.objectives import Dodge

    photos = torch.stack([_photos("10010", 1)[0], _photos("10036", 1)[0]])
    faces = [find_faces(photo) for photo in photos]
    embedders = [dlib_embedder()]
    moved = (photos + 0.02 * torch.randn(photos.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    both = Dodge(photos, faces, embedders).select(torch.tensor([1]))
    alone = Dodge(photos[1:], faces[1:], embedders)
    (loss, success), (alone_loss, alone_success) = both(moved[1:]), alone(moved[1:])
    assert torch.allclose(loss, alone_loss, rtol=1e-3) and torch.equal(success, alone_success)  # nudges differ by 1e-3


@needs_shared
def test_judges_match_a_clean_photo_with_itself() -> None:
    if not MOBILEFACENET.is_file():
        pytest.skip(f"{MOBILEFACENET} is absent")
    photo, other = _photos("10010", 2)
    for judge in (DlibJudge(), OnnxJudge(MOBILEFACENET, threshold=0.75)):
        (same,) = judge_faces(judge, photo, photo)
        assert same.detected and same.matches and same.distance < 1e-4
        (again,) = judge_faces(judge, other, photo)
        assert again.detected and again.matches


def test_equal_error_threshold_splits_the_two_sets() -> None:
    assert equal_error_threshold([0.1, 0.2, 0.3, 0.7], [0.5, 0.8, 0.9, 1.0]) == pytest.approx(0.7, abs=0.21)
    assert 0.3 <= equal_error_threshold([0.1, 0.2, 0.3], [0.6, 0.8, 0.9]) <= 0.6
