"""Face models from files: ONNX through onnx2torch, torch.export .pt2, and the differentiable ArcFace chip."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

pytest.importorskip("dlib", reason="face models need dlib-bin (pip install dlib-bin)")
onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX checks need onnxruntime")

from conftest import shared_path  # noqa: E402

from advpriv.faces.align import arcface_chip  # noqa: E402
from advpriv.faces.detect import Face, detect_faces  # noqa: E402
from advpriv.faces.embedders import FaceEmbedder, dlib_embedder, file_embedder  # noqa: E402
from advpriv.faces.judges import arcface_image_chip  # noqa: E402
from advpriv.faces.objectives import Dodge, describe, face_chips  # noqa: E402
from advpriv.faces.region import face_region  # noqa: E402
from advpriv.faces.specs import SpecError, load_embedder, load_judge  # noqa: E402

# Ensemble members only: the unseen judge mobilefacenet.onnx is never attacked, so never loaded as an embedder.
ENSEMBLE = {"mobileface.onnx": 0.179, "faceres_vggface2.onnx": 0.521, "facenet_msceleb.onnx": 0.317}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def celeba_face() -> tuple[np.ndarray, Face]:
    pixels = np.asarray(Image.open(shared_path("data", "celeba-id", "10010", "000351.jpg")).convert("RGB")).copy()
    return pixels, detect_faces(pixels)[0]


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255


def tiny_onnx(path: Path, nodes: list, output_shape: list, input_shape: list | None = None) -> Path:
    """An ONNX model from `nodes` taking "x" (default (N,3,32,32)) to "y" of `output_shape`, with one 3→4 conv weight."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.linspace(-1, 1, 108).tolist())
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape or ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


CONV = helper.make_node("Conv", ["x", "w"], ["c"])
EMBED = [CONV, helper.make_node("GlobalAveragePool", ["c"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])]


def test_tiny_onnx_embedder_reads_its_size_and_has_gradients(tmp_path: Path) -> None:
    path = tiny_onnx(tmp_path / "tiny.onnx", EMBED, ["N", 4])
    embedder = load_embedder(f"{path}:similarity=0.4,name=mine")
    assert (embedder.name, embedder.input_size, embedder.alignment, embedder.metric) == ("mine", 32, "arcface", "cosine")
    assert embedder.threshold == pytest.approx(0.6)
    chips = torch.rand(3, 3, 32, 32, requires_grad=True)
    embedder(chips).square().sum().backward()
    assert chips.grad is not None and chips.grad.abs().sum() > 0
    assert "torchvision" not in sys.modules or sys.modules["torchvision"].__spec__ is not None


def test_onnx_with_a_fixed_batch_of_one_runs_chip_by_chip(tmp_path: Path) -> None:
    path = tiny_onnx(tmp_path / "one.onnx", EMBED, [1, 4], input_shape=[1, 3, 32, 32])
    embedder = file_embedder(path, threshold=0.5)
    chips = torch.rand(2, 3, 32, 32)
    assert torch.allclose(embedder(chips), torch.cat([embedder(chips[:1]), embedder(chips[1:])]))


@pytest.mark.parametrize(
    ("nodes", "output", "spec", "message"),
    [
        (EMBED, ["N", 4], "", r"tiny.onnx: give the model's match threshold, as threshold= .* or similarity="),
        (EMBED, ["N", 4], ":similarity=0.3,size=112", r"takes 32×32 chips but size=112 was given; give size=32"),
        ([CONV, helper.make_node("Identity", ["c"], ["y"])], ["N", 4, 30, 30], ":threshold=0.5",
         r"returned \(2, 4, 30, 30\) for 2 chips; a face embedder must return one descriptor per chip, \(N,D\)"),
        (EMBED[:2] + [helper.make_node("ReduceMean", ["p"], ["y"], axes=[1, 2, 3], keepdims=0)], ["N"],
         ":threshold=0.5", r"returned \(2,\) for 2 chips"),
        (EMBED[:2] + [helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Log", ["f"], ["y"])],
         ["N", 4], ":threshold=0.5", "NaN or infinite descriptors.*range"),
    ],
    ids=["missing-threshold", "wrong-size", "image-output", "rank-1-output", "nan-output"],
)
def test_onnx_spec_errors_say_what_to_fix(tmp_path: Path, nodes: list, output: list, spec: str, message: str) -> None:
    path = tiny_onnx(tmp_path / "tiny.onnx", nodes, output)
    with pytest.raises(SpecError, match=message):
        load_embedder(f"{path}{spec}")


def test_unconvertible_onnx_and_wrong_channels(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx at all")
    with pytest.raises(SpecError, match="junk.onnx could not be converted from ONNX to PyTorch by onnx2torch"):
        load_embedder(f"{junk}:threshold=0.5")
    grey = tiny_onnx(tmp_path / "grey.onnx", EMBED, ["N", 4], input_shape=["N", 1, 32, 32])
    with pytest.raises(SpecError, match=r"takes input \(None, 1, 32, 32\); a face model must take RGB chips"):
        load_embedder(f"{grey}:threshold=0.5")


class Pool(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).relu().mean((2, 3))


def test_torch_export_pt2_files(tmp_path: Path) -> None:
    dynamic = tmp_path / "dynamic.pt2"
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(Pool().eval(), (torch.rand(2, 3, 48, 48),), dynamic_shapes=({0: batch},)), dynamic)
    embedder = load_embedder(f"{dynamic}:threshold=0.3,range=-1..1")
    assert (embedder.input_size, embedder.alignment, embedder.name) == (48, "arcface", "dynamic")
    chips = torch.rand(3, 3, 48, 48, requires_grad=True)
    embedder(chips).sum().backward()
    assert chips.grad is not None and chips.grad.isfinite().all()
    single = tmp_path / "single.pt2"
    torch.export.save(torch.export.export(Pool().eval(), (torch.rand(1, 3, 40, 40),)), single)
    assert file_embedder(single, 0.3)(torch.rand(5, 3, 40, 40)).shape == (5, 8)
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"nothing")
    with pytest.raises(SpecError, match="junk.pt2 is not a torch.export program"):
        load_embedder(f"{junk}:threshold=0.3")


def test_arcface_chip_matches_pillow_and_has_gradients(celeba_face: tuple[np.ndarray, Face]) -> None:
    pixels, face = celeba_face
    photo = _tensor(pixels).requires_grad_()
    for size in (112, 160, 224):
        chip = arcface_chip(photo, face.arcface_points, size)
        expected = arcface_image_chip(pixels, np.array(face.arcface_points), size).astype(int)
        got = (chip[0].detach().permute(1, 2, 0) * 255 + 1e-3).floor().int().numpy()  # Pillow truncates
        assert np.abs(got - expected).max() <= 1 and (got != expected).mean() < 5e-3
    chip.sum().backward()
    assert photo.grad is not None and photo.grad.isfinite().all() and photo.grad.abs().sum() > 0


def test_arcface_points_travel_with_the_region(celeba_face: tuple[np.ndarray, Face]) -> None:
    pixels, face = celeba_face
    region = face_region([face], pixels.shape[:2])
    (shifted,) = region.shift([face])
    photo = _tensor(pixels)
    torch.testing.assert_close(shifted.chip(region.crop(photo), "arcface", 112), face.chip(photo, "arcface", 112))
    assert torch.equal(shifted.chip(region.crop(photo), "dlib", 150), face.chip(photo, "dlib", 150))


@pytest.mark.parametrize("model", sorted(ENSEMBLE), ids=lambda m: m.removesuffix(".onnx"))
def test_onnx2torch_agrees_with_onnxruntime_on_real_chips(model: str, celeba_face: tuple[np.ndarray, Face]) -> None:
    path = shared_path("models", model)
    embedder = load_embedder(f"{path}:similarity={ENSEMBLE[model]},range=0..1,align=arcface")
    pixels, face = celeba_face
    chip = arcface_image_chip(pixels, np.array(face.arcface_points), embedder.input_size)
    x = chip.astype(np.float32).transpose(2, 0, 1)[None] / 255
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = embedder(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    photo = _tensor(pixels).requires_grad_()
    (descriptor,) = describe.__wrapped__(photo, [[face]], [embedder])  # the differentiable path the attack takes
    descriptor.square().sum().backward()
    assert photo.grad is not None and photo.grad.isfinite().all() and photo.grad.abs().sum() > 0


def test_judge_and_embedder_agree_on_a_written_face(celeba_face: tuple[np.ndarray, Face]) -> None:
    path = shared_path("models", "mobileface.onnx")
    judge = load_judge(f"{path}:similarity=0.179,range=0..1")
    embedder = load_embedder(f"{path}:similarity=0.179")
    pixels, face = celeba_face
    (_, judged), = judge.describe(pixels)
    (described,) = describe(_tensor(pixels), [[face]], [embedder])
    assert float(embedder.distance(described, torch.from_numpy(judged)[None])) < 1e-3


def test_ensemble_objective_cuts_each_contract_once(celeba_face: tuple[np.ndarray, Face], tmp_path: Path) -> None:
    pixels, face = celeba_face
    mobileface = load_embedder(f"{shared_path('models', 'mobileface.onnx')}:similarity=0.179")
    embedders: list[FaceEmbedder] = [dlib_embedder(), mobileface]
    photo = _tensor(pixels)
    assert face_chips(photo, [[face]], "arcface", 112).shape == (1, 3, 112, 112)
    dodge = Dodge(photo, [[face]], embedders, track_landmarks=False)
    assert [r.shape[1] for r in dodge.references] == [128, 256]
    loss, success = dodge(photo)
    assert loss.item() > 0 and not success.item()
