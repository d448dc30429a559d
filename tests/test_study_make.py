"""`advpriv study make`: pairs matched by stem, hidden references with measured PSNR, and refusals in plain words."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from advpriv.cli import app
from advpriv.images import load_image
from advpriv.study.manifest import IDENTICAL, NOISE, load_manifest


@pytest.fixture
def outputs(tmp_path):
    """Three originals; method `plus1` brightened two of them by one level (written like `advpriv protect`)."""
    rng = np.random.default_rng(0)
    originals, method = tmp_path / "originals", tmp_path / "plus1"
    originals.mkdir()
    method.mkdir()
    for stem in ("a", "b", "c"):
        pixels = rng.integers(20, 230, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(originals / f"{stem}.png")
        if stem != "c":
            Image.fromarray(pixels + 1).save(method / f"{stem}.protected.png")
    return originals, method


def make(*args: str):
    return CliRunner().invoke(app, ["study", "make", *args])


def test_make_builds_pairs_and_hidden_references(outputs, tmp_path):
    originals, method = outputs
    study = tmp_path / "study"
    result = make(str(study), "--originals", str(originals), "--method", f"plus1={method}", "--identical", "1",
                  "--noisy", "2", "--repeats", "2")
    assert result.exit_code == 0, result.output
    manifest = load_manifest(study)
    methods = [p.method for p in manifest.pairs]
    assert sorted(methods) == sorted(["plus1", "plus1", IDENTICAL, NOISE, NOISE])
    assert len(manifest.repeats) == 2 and set(manifest.repeats) <= {p.id for p in manifest.pairs}
    for pair in manifest.pairs:
        original = load_image(study / pair.original_file, min_side=1)
        changed = load_image(study / pair.changed_file, min_side=1)
        assert original.equal(load_image(pair.source, min_side=1))  # the page shows the original's exact pixels
        if pair.method == "plus1":
            assert pair.psnr == pytest.approx(20 * np.log10(255), abs=1e-3)  # every pixel one level up
            assert changed.equal(load_image(pair.changed, min_side=1))
        elif pair.method == IDENTICAL:
            assert pair.psnr is None and changed.equal(original)
        else:
            assert 29.5 < pair.psnr < 30.5, pair.psnr
            measured = 10 * np.log10(1 / (changed - original).pow(2).mean().item())
            assert measured == pytest.approx(pair.psnr, abs=1e-3)  # the PSNR recorded is the one produced
    recorded = json.loads((study / "study.json").read_text())
    assert {"id", "method", "source", "changed", "psnr"} == set(recorded["pairs"][0])
    assert "noisy references at" in result.output


def test_make_never_overwrites_a_study_and_explains_bad_inputs(outputs, tmp_path):
    originals, method = outputs
    study = tmp_path / "study"
    assert make(str(study), "--originals", str(originals), "--method", f"plus1={method}").exit_code == 0
    before = (study / "study.json").read_bytes()
    again = make(str(study), "--originals", str(originals), "--method", f"plus1={method}")
    assert again.exit_code == 2 and "already holds a study" in again.output
    assert (study / "study.json").read_bytes() == before

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    result = make(str(busy), "--originals", str(originals), "--method", f"plus1={method}")
    assert result.exit_code == 2 and "not an empty folder" in result.output
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    result = make(str(tmp_path / "s2"), "--originals", str(originals), "--method", f"none={empty}")
    assert result.exit_code == 2 and "protected.png" in result.output and "--method none=DIR" in result.output
    result = make(str(tmp_path / "s3"), "--originals", str(originals), "--method", "plus1")
    assert result.exit_code == 2 and "NAME=DIR" in result.output

    Image.new("RGB", (10, 10)).save(method / "a.protected.png")  # not the original's size
    result = make(str(tmp_path / "s4"), "--originals", str(originals), "--method", f"plus1={method}")
    assert result.exit_code == 2 and "same size" in result.output
    assert not (tmp_path / "s4").exists() and not list(tmp_path.glob(".s4.*"))  # nothing half-made is left
