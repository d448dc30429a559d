"""The pure-Python reader of dlib's model file and the PyTorch port, checked against the real dlib-bin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advpriv.faces import dlib_resnet as port
from advpriv.faces.dlib_format import DlibFormatError, read_dlib_net
from advpriv.faces.model_files import dlib_model_path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CELEBA_ID = SHARED / "data" / "celeba-id"
needs_shared = pytest.mark.skipif(not CELEBA_ID.is_dir(), reason=f"{CELEBA_ID} is absent")


def test_reader_finds_the_documented_network() -> None:
    net = read_dlib_net(dlib_model_path(port.MODEL_FILE), port.WRAPPERS)
    kinds = [layer.kind for layer in net.layers]
    assert net.input.attrs["size"] == (150, 150)
    assert np.allclose(net.input.attrs["mean"], (122.782, 117.001, 104.298))
    assert net.loss.attrs["distance_threshold"] == pytest.approx(port.MATCH_THRESHOLD)
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14 and kinds[-1] == "fc"
    assert net.layers[-1].tensors["weight"].shape == (128, 256)


def test_reader_rejects_a_wrong_structure() -> None:
    with pytest.raises(DlibFormatError):
        read_dlib_net(dlib_model_path(port.MODEL_FILE), port.WRAPPERS[:-1])


def test_reader_rejects_a_truncated_file(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.dat"
    truncated.write_bytes(dlib_model_path(port.MODEL_FILE).read_bytes()[:100_000])
    with pytest.raises(DlibFormatError, match="unexpected end of file"):
        read_dlib_net(truncated, port.WRAPPERS)


def test_converted_weights_are_cached_as_safetensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(port, "user_cache_dir", lambda name: str(tmp_path / name))
    first = port.dlib_resnet()
    (cached,) = (tmp_path / "advpriv").glob("dlib_resnet_v1-*.safetensors")
    second = port.dlib_resnet()
    assert cached.stat().st_size > 20e6 and not list(cached.parent.glob("*.tmp"))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_an_unwritable_cache_only_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setattr(port, "user_cache_dir", lambda name: str(blocked / name))
    with pytest.warns(UserWarning, match="could not cache dlib's converted weights"):
        model = port.dlib_resnet()
    assert model(torch.rand(1, 3, 150, 150)).shape == (1, 128)


@needs_shared
def test_port_agrees_with_dlib_bin_on_real_chips() -> None:
    dlib = pytest.importorskip("dlib", reason="the agreement test needs dlib-bin (pip install dlib-bin)")
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    recogniser = dlib.face_recognition_model_v1(str(dlib_model_path(port.MODEL_FILE)))
    chips = []
    for identity in sorted(CELEBA_ID.iterdir())[:6]:
        photo = np.asarray(Image.open(sorted(identity.glob("*.jpg"))[0]).convert("RGB"))
        faces = detector(photo, 1)
        if faces:
            chips.append(dlib.get_face_chip(photo, landmarks(photo, faces[0]), size=150, padding=0.25))
    assert len(chips) >= 4
    expected = np.array([recogniser.compute_face_descriptor(chip) for chip in chips])
    batch = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        got = port.dlib_resnet()(batch).numpy()
    assert np.abs(got - expected).max() < 1e-4
