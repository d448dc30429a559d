"""Hostile and odd inputs to `advpriv protect` (issue 12): one odd file never stops a batch, and a batch's
outputs, records and modes are what a careful user expects."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import advpriv.cli
from advpriv.cli import app

TOY = ["--target", "toy_models:tiny_classifier", "--steps", "40", "--strength", "low"]
runner = CliRunner()


def _photo(path, size=(48, 40), seed=1):
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _protect(*args, out, options=TOY):
    return _said(runner.invoke(app, ["protect", *map(str, args), "-o", str(out), *options]))


def _said(result):
    """The result, its output with the console's line wrapping undone."""
    result.said = " ".join(result.output.split())
    return result


def _records(out):
    return {os.path.basename(r["input"]): r for r in json.loads((out / "advpriv-metrics.json").read_text())}


def test_tiny_thin_and_looping_files_are_named_and_the_batch_goes_on(tmp_path):
    _photo(tmp_path / "a.png")
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    Image.new("RGB", (40000, 1)).save(tmp_path / "thin.png")  # 196 bytes; its resize once asked for 31 GB
    Image.new("RGB", (2000, 40)).save(tmp_path / "strip.png")  # 50:1
    os.symlink("loop", tmp_path / "loop")
    _photo(tmp_path / "z.png", seed=2)
    names = ["a.png", "one.png", "thin.png", "strip.png", "loop", "z.png"]
    result = _protect(*(tmp_path / n for n in names), out=tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "one.png: 1×1 pixels is too small to protect" in result.said
    assert "thin.png: 40000×1 pixels is too small" in result.said
    assert "strip.png: 2000×40 pixels is too thin to protect (more than 20:1); crop it" in result.said
    assert "loop: a symbolic link that loops back on itself" in result.said
    assert "Traceback" not in result.said
    records = _records(tmp_path / "out")
    assert set(records) == set(names)
    assert records["a.png"]["output"] and records["z.png"]["output"]  # the file after the odd ones was protected
    assert all(records[n]["error"] for n in ["one.png", "thin.png", "strip.png", "loop"])


def test_an_unexpected_failure_in_one_file_is_caught_named_and_counted(tmp_path, monkeypatch):
    from advpriv.protect import files

    real = files.protect_encoded

    def flaky(image, protector, fmt, name):
        if name.endswith("bad.png"):
            raise MemoryError("simulated")
        return real(image, protector, fmt, name)

    monkeypatch.setattr(files, "protect_encoded", flaky)
    for name in ["bad.png", "good.png"]:
        _photo(tmp_path / name)
    result = _protect(tmp_path / "bad.png", tmp_path / "good.png", out=tmp_path / "out")
    assert result.exit_code == 1
    assert "bad.png: MemoryError: simulated; this file was skipped" in result.said
    assert _records(tmp_path / "out")["good.png"]["output"]


def test_an_output_folder_inside_the_input_folder_is_not_protected_again_and_runs_resume(tmp_path):
    _photo(tmp_path / "a.png")
    _photo(tmp_path / "b.png", seed=2)
    out = tmp_path / "protected"
    first = _protect(tmp_path, out=out)
    assert first.exit_code == 0, first.output
    second = _protect(tmp_path, out=out)
    assert second.exit_code == 0, second.output
    assert "2 input(s) already protected" in second.said
    assert "written by advpriv" in second.said
    assert not list(out.glob("*.protected.protected.*"))
    assert sorted(p.name for p in out.glob("*.png")) == ["a.protected.png", "b.protected.png"]
    (out / "b.protected.png").write_bytes(b"tampered")  # no longer the verified bytes: protected again
    third = _protect(tmp_path, out=out)
    assert "1 input(s) already protected" in third.said
    assert Image.open(out / "b.protected.png").size == (48, 40)
    forced = _protect(tmp_path, "--force", out=out)
    assert "already protected" not in forced.said
    assert len(_records(out)) == 2


def test_metrics_of_earlier_runs_are_kept(tmp_path):
    _photo(tmp_path / "a.png")
    _photo(tmp_path / "b.png", seed=2)
    _protect(tmp_path / "a.png", out=tmp_path / "out")
    _protect(tmp_path / "b.png", out=tmp_path / "out")
    assert set(_records(tmp_path / "out")) == {"a.png", "b.png"}
    csv_rows = (tmp_path / "out" / "advpriv-metrics.csv").read_text().splitlines()
    assert len(csv_rows) == 3


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_outputs_get_the_umasks_mode(tmp_path, mask):
    _photo(tmp_path / "a.png")
    old = os.umask(mask)
    try:
        _protect(tmp_path / "a.png", out=tmp_path / "out")
    finally:
        os.umask(old)
    for name in ["a.protected.png", "advpriv-metrics.json", "advpriv-metrics.csv"]:
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("steps", ["0", "-3"])
def test_steps_below_one_is_a_usage_error(tmp_path, steps):
    _photo(tmp_path / "a.png")
    result = _protect(tmp_path / "a.png", out=tmp_path / "out", options=["--target", "toy_models:tiny_classifier",
                                                                        "--steps", steps])
    assert result.exit_code == 2 and "--steps" in result.said
    assert not (tmp_path / "out").exists()


def test_heic_avif_and_jfif_are_read_and_other_files_are_named_as_skipped(tmp_path):
    from pillow_heif import from_pillow

    rgb = Image.open(_photo(tmp_path / "src.bmp"))
    from_pillow(rgb).save(tmp_path / "phone.heic")
    rgb.save(tmp_path / "web.avif")
    rgb.save(tmp_path / "old.jfif", "JPEG")
    (tmp_path / "notes.txt").write_text("not a photo")
    result = _protect(tmp_path, out=tmp_path / "out")
    assert set(_records(tmp_path / "out")) == {"src.bmp", "phone.heic", "web.avif", "old.jfif"}
    assert all(r["output"] for r in _records(tmp_path / "out").values()), result.output
    assert "1 file not images by their suffix" in result.said and "notes.txt" in result.said


def test_ctrl_c_keeps_the_finished_files_metrics_and_says_so(tmp_path, monkeypatch):
    real = advpriv.cli.protect_planned

    def interrupted(*args, **kwargs):
        for i, report in enumerate(real(*args, **kwargs)):
            if i == 1:
                raise KeyboardInterrupt
            yield report

    monkeypatch.setattr(advpriv.cli, "protect_planned", interrupted)
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        _photo(tmp_path / name, seed=i)
    result = _protect(tmp_path, out=tmp_path / "out")
    assert result.exit_code == 130
    assert "interrupted after 1 of 3 files" in result.said
    assert set(_records(tmp_path / "out")) == {"a.png"}


def test_a_failing_factory_or_a_pickled_checkpoint_gets_one_line(tmp_path):
    _photo(tmp_path / "a.png")
    result = _protect(tmp_path / "a.png", out=tmp_path / "out", options=["--target", "os:system"])
    assert result.exit_code == 2 and "Traceback" not in result.said
    assert "target factory 'os:system' failed (TypeError" in result.said
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "weights.pt")
    result = _protect(tmp_path / "a.png", out=tmp_path / "out", options=["--target", str(tmp_path / "weights.pt")])
    assert result.exit_code == 2 and "is a torch.save checkpoint" in result.said and "torch.jit.script" in result.said


def test_torchattacks_does_not_print(tmp_path, capfd):
    _photo(tmp_path / "a.png")
    result = _protect(tmp_path / "a.png", out=tmp_path / "out", options=["--target", "toy_models:tiny_classifier",
                                                                        "--method", "fgsm"])
    assert result.exit_code in (0, 1)
    assert "Failed to set device" not in result.said + capfd.readouterr().out
