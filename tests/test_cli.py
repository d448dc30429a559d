"""`advpriv protect` on files: bad inputs are reported and skipped, inputs are never touched, outputs are clean."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from advpriv.cli import app

TOY = ["--target", "toy_models:tiny_classifier", "--steps", "40", "--strength", "low"]
runner = CliRunner()


def _photo(path, size=(48, 40), exif=None):
    rgb = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, **({"exif": exif} if exif else {}))
    return path


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_bad_files_are_named_and_the_batch_goes_on(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _photo(src / "good.png")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(buf, "JPEG")
    (src / "cut.jpg").write_bytes(buf.getvalue()[:300])
    (src / "fake.png").write_bytes(b"definitely not a png")
    before = _digest(src)
    result = runner.invoke(app, ["protect", str(src), "-o", str(tmp_path / "out"), *TOY], terminal_width=200)
    assert result.exit_code == 1, result.output
    assert "cut.jpg" in result.output and "fake.png" in result.output
    assert _digest(src) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [  # the failed files' claimed names given back
        ".advpriv.lock", "advpriv-metrics.csv", "advpriv-metrics.json", "good.protected.png"
    ]
    rows = json.loads((tmp_path / "out" / "advpriv-metrics.json").read_text())
    assert {r["input"].split("/")[-1]: bool(r["error"]) for r in rows} == {"cut.jpg": True, "fake.png": True, "good.png": False}
    good = next(r for r in rows if not r["error"])
    assert good["success"] and good["metrics"]["psnr"] > 20
    assert list(good["variants"]) == ["png", "jpeg85", "half"]
    assert good["variants"]["png"] == {"success": True, "summary": good["after"], "faces": []}
    assert all(set(v) == {"success", "summary", "faces"} for v in good["variants"].values())
    assert good["survival"].startswith("png: protected (") and "; after jpeg85: " in good["survival"]
    words = " ".join(result.output.split())
    assert "jpeg85: after JPEG quality 85" in words and "half: after a half-size resize" in words
    assert "good.png (" in words and "It sees “" in words  # the verdict in words


def test_never_overwrites_inputs_even_in_the_same_folder(tmp_path):
    _photo(tmp_path / "a.png")
    _photo(tmp_path / "a.protected.png")
    before = _digest(tmp_path)
    result = runner.invoke(app, ["protect", str(tmp_path / "a.png"), str(tmp_path / "a.protected.png"), "-o", str(tmp_path), *TOY])
    assert result.exit_code == 0, result.output
    after = _digest(tmp_path)
    assert all(after[name] == digest for name, digest in before.items())
    assert {"a.protected-1.png", "a.protected.protected.png"} <= set(after)


def test_output_has_no_metadata_and_is_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 0.0)}
    _photo(tmp_path / "phone.jpg", size=(60, 32), exif=exif.tobytes())
    result = runner.invoke(app, ["protect", str(tmp_path / "phone.jpg"), "-o", str(tmp_path / "o"), "--format", "jpg", *TOY])
    assert "phone.jpg" in result.output
    with Image.open(tmp_path / "o" / "phone.protected.jpg") as out:
        assert out.size == (32, 60) and not out.getexif() and "exif" not in out.info


def test_usage_errors(tmp_path):
    result = runner.invoke(app, ["protect", str(tmp_path), "-o", str(tmp_path / "o"), *TOY])
    assert result.exit_code == 2 and "no images found" in result.output
    _photo(tmp_path / "x.png")
    result = runner.invoke(app, ["protect", str(tmp_path), "-o", str(tmp_path / "o"), "--method", "magic"])
    assert result.exit_code == 2 and "unknown method" in result.output
    result = runner.invoke(app, ["protect", str(tmp_path), "-o", str(tmp_path / "o"), "--target", "nothing"])
    assert result.exit_code == 2 and "unknown target" in result.output
    result = runner.invoke(app, ["protect", str(tmp_path), "-o", str(tmp_path / "o"), "--strength", "max"])
    assert result.exit_code == 2 and "unknown strength 'max'; choose one of low, medium, high" in result.output


def test_huge_image_is_refused_by_the_guard(tmp_path):
    _photo(tmp_path / "big.png", size=(200, 200))
    result = runner.invoke(app, ["protect", str(tmp_path), "-o", str(tmp_path / "o"), "--max-pixels", "1000", *TOY])
    assert result.exit_code == 1 and "decompression-bomb" in result.output


def test_faces_are_protected_by_default_and_judged_by_dlib(tmp_path):
    from conftest import shared_path

    photo = sorted(shared_path("data", "celeba-id").glob("*/*.jpg"))[0]
    result = runner.invoke(app, ["protect", str(photo), "-o", str(tmp_path), "--steps", "30"])
    rows = json.loads((tmp_path / "advpriv-metrics.json").read_text())
    assert rows[0]["before"] == "1 face" and rows[0]["after"].startswith("dlib: ")
    assert result.exit_code == (0 if rows[0]["success"] else 1)
    assert rows[0]["metrics"]["psnr"] > 35


def test_photo_without_a_face_is_reported_by_name(tmp_path):
    Image.new("RGB", (80, 60), (128, 128, 128)).save(tmp_path / "wall.png")
    result = runner.invoke(app, ["protect", str(tmp_path / "wall.png"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "wall.png" in result.output and "face" in result.output


def test_impersonation_needs_photos_of_the_identity(tmp_path):
    _photo(tmp_path / "x.png")
    result = runner.invoke(app, ["protect", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--mode", "impersonate"])
    assert result.exit_code == 2 and "--as" in result.output


def test_protect_help_fits_80_columns():
    result = runner.invoke(app, ["protect", "--help"], env={"COLUMNS": "80"})
    lines = result.output.splitlines()
    assert result.exit_code == 0 and max(map(len, lines)) <= 80 and len(lines) <= 70, result.output
    assert "…" not in result.output  # no option name or syntax cut short
    for option in ("--outdir", "--target", "--strength", "--embedder", "--no-dlib", "--no-facenet", "--judge",
                   "--trust-model-code", "--force"):
        assert f" {option} " in result.output


def test_a_run_reports_its_stages_and_the_view_shows_them(tmp_path):
    from rich.console import Console

    from advpriv import progress
    from advpriv.protect.batch import plan_batch, protect_planned
    from advpriv.protect.files import make_protector
    from advpriv.run_view import RunView

    photos = [_photo(tmp_path / "a.png"), _photo(tmp_path / "b.png")]
    plan = plan_batch(photos, tmp_path / "out")
    view = RunView(photos, Console(file=io.StringIO(), width=80))
    seen = []

    def listen(report):
        seen.append(report)
        view(report)
        task = view.progress.tasks[0]
        assert 0 <= task.completed - view.current <= 1 and task.description.startswith(f"{photos[view.current].name}: ")

    with progress.listening(listen):
        for k, _ in enumerate(protect_planned(plan, make_protector("toy_models:tiny_classifier", "mnd"))):
            view.start(k + 1)
    stages = list(dict.fromkeys(r["stage"] for r in seen))
    assert stages == ["preparing", "protecting", "checking", "writing"]
    steps = [r for r in seen if r["step"]]
    assert steps and all(r["total"] == 50 and r["lam"] > 0 and r["quality"] >= 0 for r in steps)
    assert all(r["eta_s"] >= 0 for r in steps)
    assert view.progress.tasks[0].completed == 2
    view.start(0)
    view(steps[-1])
    assert view.progress.tasks[0].description.startswith(f"a.png: optimising {steps[-1]['step']}/50 λ ")


def test_a_second_run_with_nothing_to_do_shows_no_bar(tmp_path):
    args = ["protect", str(_photo(tmp_path / "a.png")), "-o", str(tmp_path / "out"), *TOY]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert again.exit_code == 0 and "already protected" in again.output, again.output
    assert "0/0" not in again.output and "━" not in again.output
