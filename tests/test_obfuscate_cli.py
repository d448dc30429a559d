"""`advpriv obfuscator train | evaluate | export` end to end on tiny data, and the refusals of bad input."""

from __future__ import annotations

import json

from PIL import Image
from test_obfuscate_data import one_thread, write_dataset  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from advpriv.obfuscate.cli import app

TINY = ["--preset", "paper", "--width", "0.0625", "--fc", "16", "--pretrain-epochs", "1", "--attacker-epochs", "1", "--epochs", "1",
        "--batch-size", "8", "--threads", "1"]
runner = CliRunner()


def test_train_evaluate_export(tmp_path):
    data = write_dataset(tmp_path / "faces", n=24)
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", str(data), "--out", str(run), *TINY])
    assert r.exit_code == 0, r.output
    again = runner.invoke(app, ["train", str(data), "--out", str(run), *TINY, "--nopeek", "1"])  # resumes at the end
    assert again.exit_code == 0, again.output
    r = runner.invoke(app, ["evaluate", str(run), str(data), "--attack-epochs", "1", "--decoder-epochs", "2",
                            "--attack-width", "0.125", "--montage", str(tmp_path / "m.png")])
    assert r.exit_code == 0, r.output
    assert [e["name"] for e in json.loads((run / "report.json").read_text())] == ["utility_only", "obfuscator", "noise", "nopeek"]
    assert (tmp_path / "m.png").stat().st_size > 0
    one = tmp_path / "one.json"
    r = runner.invoke(app, ["evaluate", str(run), str(data), "--attack-epochs", "1", "--only", "obfuscator",
                            "--report", str(one)])
    assert r.exit_code == 0, r.output
    assert [e["name"] for e in json.loads(one.read_text())] == ["obfuscator"]
    _fails(["evaluate", str(run), str(data), "--only", "pixelate"], "pixelate", "utility_only")
    r = runner.invoke(app, ["export", str(run), "--no-executorch"])
    assert r.exit_code == 0, r.output
    report = json.loads((run / "export" / "device_report.json").read_text())
    assert report["onnx_max_abs_diff"] < 1e-4 and report["feature_bytes_fp16"] > 0


def test_default_preset_with_split_options_and_the_frontier_plot(tmp_path):
    data = write_dataset(tmp_path / "faces", n=24)
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", str(data), "--out", str(run), "--width", "0.0625", "--fc", "16",
                            "--pretrain-epochs", "1", "--bottleneck", "4", "--pool", "2x1", "--noise", "0.3",
                            "--image-size", "native", "--threads", "1"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["split"], cfg["bottleneck"], cfg["pool"], cfg["noise"], cfg["epochs"]) == (4, 4, [2, 1], 0.3, 0)
    r = runner.invoke(app, ["evaluate", str(run), str(data), "--attack-epochs", "2", "--patience", "1",
                            "--only", "obfuscator", "--frontier", str(tmp_path / "f.png")])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "report.json").read_text())[0]["linear_probe_accuracy"] is not None
    assert (tmp_path / "f.png").stat().st_size > 0
    _fails(["train", str(data), "--out", str(run), "--preset", "fast"], "--preset", "paper, reduced, private")
    _fails(["train", str(data), "--out", str(tmp_path / "b"), "--bottleneck", "0", "--noise", "0.5"], "bottleneck")
    _fails(["train", str(data), "--out", str(tmp_path / "b"), "--pool", "one"], "--pool", "HEIGHTxWIDTH")


def _fails(args: list[str], *phrases: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    for p in phrases:
        assert p in " ".join(r.output.split()), r.output


def test_user_errors_are_explained(tmp_path):
    data = write_dataset(tmp_path / "faces", n=12)
    out = str(tmp_path / "run")
    _fails(["train", str(data), "--out", out, "--private", "Gender", *TINY], "no attribute named 'Gender'", "Male")
    Image.new("RGB", (32, 36)).save(data / "img_align_celeba" / "extra.jpg")
    _fails(["train", str(data), "--out", out, *TINY], "have no row in the attribute table", "extra.jpg")
    _fails(["train", str(tmp_path / "nope"), "--out", out], "no such file or folder")
    _fails(["evaluate", str(tmp_path / "nope"), str(data)], "not a training run")
    _fails(["train", str(data), "--out", out, "--image-size", "big"], "HEIGHTxWIDTH")
    _fails(["train", str(data), "--out", out, "--private-loss", "max", *TINY], "--private-loss", "choose one of")
