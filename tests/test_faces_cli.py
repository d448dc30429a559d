"""`advpriv protect` on faces: models named on the command line (--embedder, --no-dlib, --judge), --as, the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("dlib", reason="face protection needs dlib-bin (pip install dlib-bin)")

from conftest import shared_path  # noqa: E402

from advpriv.cli import app  # noqa: E402
from advpriv.faces.verdicts import recognised  # noqa: E402
from advpriv.protect.job import JobError, ProtectJob  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
runner = CliRunner()


@pytest.fixture(autouse=True)
def no_fetched_models(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests name the face models they attack: FaceNet, when fetched into the user's cache, stays out of the
    default ensemble here (tests/test_faces_facenet.py checks that it joins)."""
    monkeypatch.setenv("ADVPRIV_CACHE_DIR", str(tmp_path_factory.mktemp("empty-cache")))


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A real TorchScript face embedder (untrained): conv, pool, 8-d descriptor."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    path = tmp_path / "tiny.pt"
    torch.jit.script(net).save(str(path))
    return path


def test_embedder_and_judge_reach_the_report(tmp_path: Path, tiny: Path) -> None:
    photo = sorted(shared_path("data", "celeba-id").glob("*/*.jpg"))[0]
    onnx = shared_path("models", "mobilefacenet.onnx")
    args = ["protect", str(photo), "-o", str(tmp_path / "out"), "--steps", "5",
            "--embedder", f"{tiny}:threshold=0.3", "--judge", f"{onnx}:threshold=0.79", "--trust-model-code"]  # fmt: skip
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    (row,) = json.loads((tmp_path / "out" / "advpriv-metrics.json").read_text())
    assert result.exit_code == (0 if row["success"] else 1), result.output
    (face,) = row["faces"]
    assert list(face["judges"]) == ["dlib", "tiny", "mobilefacenet"]  # the attacked models judge too, first
    assert row["after"].startswith("dlib: ") and "; tiny: " in row["after"] and "; mobilefacenet: " in row["after"]
    table = result.output[result.output.index("Faces still recognised"):result.output.index("written: the file")]
    assert max(map(len, table.splitlines())) <= 80, table  # nothing cut at 80 columns: every header and cell whole
    assert table.split("\n")[1].split() == ["file", "judge", "written", "jpeg85", "half", "ΔE", "face", "ΔE", "eyes"]
    rows = {words[words.index(j)]: words[words.index(j) + 1:] for words in map(str.split, table.splitlines())
            for j in ("dlib", "tiny", "mobilefacenet") if j in words}
    for judge in ("dlib", "tiny", "mobilefacenet"):
        counts = ["{}/{}".format(*recognised(row["variants"][copy]["faces"], judge)) for copy in ("png", "jpeg85", "half")]
        assert rows[judge][:3] == counts, table
    quality = row["faces"][0]["quality"]
    assert rows["dlib"][3:] == [f"{quality['ciede2000_p99']:.1f}", f"{quality['ciede2000']:.1f}"], table
    words = " ".join(result.output.split())
    assert "Attacked dlib and tiny; also judged by mobilefacenet, which the protection never saw." in words, words
    assert f"{photo.name} (" in words and any(h in words for h in ("Not protected.", "Protected from"))
    assert list(row["variants"]) == ["png", "jpeg85", "half"] and row["variants"]["png"]["faces"] == row["faces"]
    for copy in ("jpeg85", "half"):  # the judges' verdicts on the re-encoded copies, boxes in the photo's pixels
        (face,) = row["variants"][copy]["faces"]
        assert face["box"] == row["faces"][0]["box"] and set(face["judges"]) <= {"dlib", "tiny", "mobilefacenet"}
        assert row["variants"][copy]["success"] == (not any(v["matches"] for v in face["judges"].values()))
    assert row["survival"].startswith("png: dlib ") and "; after jpeg85: dlib " in row["survival"]


def test_target_names_a_face_model_and_embedders_join_it(tmp_path: Path, tiny: Path, monkeypatch) -> None:
    attacked: list[list[str]] = []
    real = ProtectJob._face_options

    def spy(job: ProtectJob) -> dict:
        models = real(job)
        attacked.append([e.name for e in models["embedders"]])
        return models

    monkeypatch.setattr(ProtectJob, "_face_options", spy)
    photo = sorted(shared_path("data", "celeba-id").glob("*/*.jpg"))[0]
    for extra in ([], ["--embedder", "dlib"]):
        out = tmp_path / f"out{len(extra)}"
        args = ["protect", str(photo), "-o", str(out), "--steps", "2", "--target", f"{tiny}:threshold=0.3",
                "--trust-model-code", *extra]
        result = runner.invoke(app, args, terminal_width=200)
        assert result.exit_code in (0, 1) and "Faces still recognised" in result.output, result.output
        assert json.loads((out / "advpriv-metrics.json").read_text())[0]["faces"]
    assert attacked == [["tiny"], ["tiny", "dlib"]]
    assert ProtectJob(target="efficientnet-lite0").face_model is None
    assert ProtectJob(target="pkg.mod:factory").face_model is None


def test_face_models_keep_dlib_unless_told(tiny: Path) -> None:
    models = ProtectJob(embedders=(f"{tiny}:threshold=0.3",), trust_model_code=True)._face_options()
    assert [e.name for e in models["embedders"]] == ["dlib", "tiny"] and [j.name for j in models["judges"]] == ["dlib"]
    alone = ProtectJob(embedders=(f"{tiny}:threshold=0.3,name=mine", "dlib"), dlib=False, judges=("dlib",),
                       trust_model_code=True)._face_options()
    assert [e.name for e in alone["embedders"]] == ["mine", "dlib"] and [j.name for j in alone["judges"]] == ["dlib"]
    with pytest.raises(JobError, match="--no-dlib leaves no face model"):
        ProtectJob(dlib=False)._face_options()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--no-dlib"], "--no-dlib leaves no face model"),
        (["--embedder", "missing.pt:threshold=0.3"], "no TorchScript file at missing.pt"),
        (["--embedder", "TINY"], "give the model's match threshold"),
        (["--judge", "TINY:threshold=0.8"], "could not be opened as an ONNX model"),
    ],
)
def test_bad_face_models_are_usage_errors(tmp_path: Path, tiny: Path, options: list[str], message: str) -> None:
    photo = tmp_path / "x.png"
    photo.write_bytes(b"")  # never read: the face models are checked first
    options = [o.replace("TINY", str(tiny)) for o in options]
    result = runner.invoke(app, ["protect", str(photo), "-o", str(tmp_path / "o"), *options], terminal_width=400)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_impersonation_photos_reach_the_report(tmp_path: Path) -> None:
    people = shared_path("data", "celeba-id")
    photo = sorted((people / "10010").glob("*.jpg"))[0]
    target = sorted((people / "10036").glob("*.jpg"))[:2]
    args = ["protect", str(photo), "-o", str(tmp_path), "--method", "fgsm", "--mode", "impersonate",
            "--as", str(target[0]), "--as", str(target[1])]  # fmt: skip
    result = runner.invoke(app, args, terminal_width=200)
    (row,) = json.loads((tmp_path / "advpriv-metrics.json").read_text())
    assert result.exit_code == (0 if row["success"] else 1), result.output
    assert row["before"] == "1 face" and row["after"] in ("dlib: 0/1 match the target", "dlib: 1/1 match the target")
    (face,) = row["faces"]
    assert face["judges"]["dlib"]["detected"] and face["judges"]["dlib"]["matches"] == row["after"].startswith("dlib: 1/1")


def test_an_as_photo_without_a_face_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    from PIL import Image

    wall = tmp_path / "wall.png"
    Image.new("RGB", (120, 120), (200, 180, 160)).save(wall)
    photo = sorted(shared_path("data", "celeba-id").glob("*/*.jpg"))[0]
    args = ["protect", str(photo), "-o", str(tmp_path / "o"), "--mode", "impersonate", "--as", str(wall)]
    result = runner.invoke(app, args, terminal_width=400)
    assert result.exit_code == 2 and f"no face found in --as photo {wall}" in " ".join(result.output.split()), result.output
    assert not (tmp_path / "o").exists()
