"""Face-model specs: `PATH[:key=value,...]` for user embedders (TorchScript, ONNX, .pt2) and ONNX judges, with clear
errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("dlib", reason="face models need dlib-bin (pip install dlib-bin)")

from conftest import shared_path  # noqa: E402

from advpriv.faces.judges import DlibJudge, OnnxJudge  # noqa: E402
from advpriv.faces.specs import SpecError, load_embedder, load_judge, parse_spec  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")


class TinyEmbedder(torch.nn.Module):
    """A real (if untrained) face embedder: conv, pool, 16-d descriptor."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 5, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).relu().mean((2, 3))


def scripted(path: Path, model: torch.nn.Module | None = None) -> Path:
    torch.jit.script(model or TinyEmbedder()).save(str(path))
    return path


def test_parse_spec_reads_options_after_the_last_colon() -> None:
    assert parse_spec("net.pt") == ("net.pt", {})
    assert parse_spec("net.pt:threshold=0.4, metric=l2") == ("net.pt", {"threshold": "0.4", "metric": "l2"})
    assert parse_spec(r"C:\models\net.pt:threshold=0.4") == (r"C:\models\net.pt", {"threshold": "0.4"})
    assert parse_spec(r"C:\models\net.pt") == (r"C:\models\net.pt", {})
    with pytest.raises(SpecError, match="key=value"):
        parse_spec("net.pt:threshold=0.4,l2")


def test_load_embedder_wraps_a_scripted_network(tmp_path: Path) -> None:
    path = scripted(tmp_path / "tiny.pt")
    embedder = load_embedder(f"{path}:threshold=0.3,metric=l2,size=64,name=mine", trust_code=True)
    assert (embedder.name, embedder.threshold, embedder.metric, embedder.input_size) == ("mine", 0.3, "l2", 64)
    assert embedder(torch.rand(2, 3, 150, 150)).shape == (2, 16)
    default = load_embedder(f"{path}:threshold=0.3", trust_code=True)
    assert (default.name, default.metric, default.input_size, default.alignment) == ("tiny", "cosine", 112, "dlib")
    similar = load_embedder(f"{path}:similarity=0.25,align=arcface,range=-1..1", trust_code=True)
    assert (similar.threshold, similar.alignment) == (0.75, "arcface")
    assert load_embedder("dlib").name == "dlib"


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        ("", r"tiny.pt: give the model's match threshold.*tiny.pt:threshold="),
        (":threshold=abc", "threshold must be a number"),
        (":threshold=0.3,metric=dot", "metric must be one of l2, cosine"),
        (":threshold=0.3,size=big", "size must be a whole number"),
        (":threshold=0.3,colour=red", "unknown option colour; the options are threshold, similarity, metric, size"),
        (":threshold=0.3,similarity=0.7", "threshold= .* or similarity= .*, not both"),
        (":similarity=0.7,metric=l2", "with metric=l2 give threshold="),
        (":similarity=2", "similarity must lie between -1 and 1"),
        (":threshold=0.3,align=mtcnn", "align must be one of dlib, arcface"),
        (":threshold=0.3,range=0..2", r"range must be one of 0\.\.1, -1\.\.1, 0\.\.255"),
    ],
)
def test_bad_embedder_options_say_what_to_fix(tmp_path: Path, suffix: str, message: str) -> None:
    path = scripted(tmp_path / "tiny.pt")
    with pytest.raises(SpecError, match=message):
        load_embedder(f"{path}{suffix}", trust_code=True)


def test_bad_embedder_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no TorchScript file at .*missing.pt"):
        load_embedder(f"{tmp_path / 'missing.pt'}:threshold=0.3")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(SpecError, match="junk.pt is not a TorchScript file.*torch.jit.script"):
        load_embedder(f"{junk}:threshold=0.3", trust_code=True)
    image_like = scripted(tmp_path / "maps.pt", torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(SpecError, match=r"maps.pt returned \(2, 4, 110, 110\).*\(N,D\)"):
        load_embedder(f"{image_like}:threshold=0.3", trust_code=True)
    wrong_input = scripted(tmp_path / "grey.pt", torch.nn.Conv2d(1, 4, 3))
    with pytest.raises(SpecError, match=r"grey.pt failed on a batch of \(2,3,112,112\)"):
        load_embedder(f"{wrong_input}:threshold=0.3", trust_code=True)


def test_load_judge_dlib_and_errors(tmp_path: Path) -> None:
    assert isinstance(load_judge("dlib"), DlibJudge)
    with pytest.raises(SpecError, match="takes no options"):
        load_judge("dlib:threshold=0.5")
    with pytest.raises(SpecError, match="no ONNX file at"):
        load_judge(f"{tmp_path / 'nope.onnx'}:threshold=0.79")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(SpecError, match="junk.onnx could not be opened as an ONNX model"):
        load_judge(f"{junk}:threshold=0.79")


def test_load_judge_mobilefacenet() -> None:
    path = shared_path("models", "mobilefacenet.onnx")
    judge = load_judge(f"{path}:threshold=0.79")
    assert isinstance(judge, OnnxJudge) and judge.name == "mobilefacenet" and judge.threshold == 0.79
    assert (judge.size, judge.value_range, judge.alignment, judge.metric) == (112, "-1..1", "arcface", "cosine")
    assert load_judge(f"{path}:threshold=0.7,name=mfn").name == "mfn"
    with pytest.raises(SpecError, match=r"mobilefacenet.onnx: give the model's match threshold.*threshold=0.79"):
        load_judge(str(path))


def test_load_judge_ensemble_model_contract() -> None:
    path = shared_path("models", "facenet_msceleb.onnx")
    judge = load_judge(f"{path}:similarity=0.317,range=0..1")
    assert isinstance(judge, OnnxJudge) and (judge.size, judge.value_range) == (160, "0..1")
    assert judge.threshold == pytest.approx(0.683)
    with pytest.raises(SpecError, match=r"takes 160×160 chips but size=112 was given; give size=160"):
        load_judge(f"{path}:similarity=0.317,size=112")
