"""`advpriv batch` on a local Ray instance (2 CPUs): the same bytes as `advpriv protect` with the same seed and
thread count, one metrics table, a resumed run that skips everything; and Ray imported by no other command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from advpriv.cli import app

# a few MND steps at the low strength: enough to protect these photos; both paths seed each file alike
PROTECT = ["--target", "efficientnet-lite0", "--strength", "low", "--steps", "10", "--seed", "5"]
runner = CliRunner()


def _photos(folder, n=3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        smooth = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
        Image.fromarray(smooth).resize((80 + 8 * i, 64), Image.BICUBIC).save(folder / f"photo{i}.png")
    return folder


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="advpriv batch needs the scale extra: pip install -e '.[scale]'")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", configure_logging=False)
    yield ray
    ray.shutdown()


def test_batch_writes_the_bytes_of_protect_and_resumes(tmp_path, local_ray, one_thread):
    photos = _photos(tmp_path / "photos")
    one, many = tmp_path / "one", tmp_path / "ray"
    alone = runner.invoke(app, ["protect", str(photos), "-o", str(one), *PROTECT])  # on this test's one thread
    assert alone.exit_code == 0, alone.output
    result = runner.invoke(app, ["batch", str(photos), "-o", str(many), "--actors", "2", "--threads", "1", *PROTECT])
    assert result.exit_code == 0, result.output
    outputs = sorted(p.name for p in many.glob("*.protected.png"))
    assert outputs == sorted(p.name for p in one.glob("*.protected.png")) and len(outputs) == 3
    assert all((many / name).read_bytes() == (one / name).read_bytes() for name in outputs)

    rows = json.loads((many / "advpriv-metrics.json").read_text())
    assert sorted(r["output"].rsplit("/", 1)[-1] for r in rows) == outputs
    assert all(r["success"] and r["error"] is None and r["metrics"]["psnr"] > 40 for r in rows)
    assert len((many / "advpriv-metrics.csv").read_text().splitlines()) == 4

    written = {name: (many / name).stat().st_mtime_ns for name in outputs}
    again = runner.invoke(app, ["batch", str(photos), "-o", str(many), *PROTECT])
    assert again.exit_code == 0, again.output
    assert "3 skipped" in again.output
    assert {name: (many / name).stat().st_mtime_ns for name in outputs} == written
    assert len(json.loads((many / "advpriv-metrics.json").read_text())) == 3


def test_bad_options_fail_before_ray_starts(tmp_path):
    result = runner.invoke(app, ["batch", str(tmp_path), "-o", str(tmp_path / "out"), "--strength", "huge"])
    assert result.exit_code == 2 and "unknown strength 'huge'" in result.output


def test_only_the_batch_command_imports_ray(tmp_path):
    photos = _photos(tmp_path / "photos", n=1)
    code = ("import sys; from typer.testing import CliRunner; from advpriv.cli import app; "
            f"r = CliRunner().invoke(app, ['protect', {str(photos)!r}, '-o', {str(tmp_path / 'out')!r}, "
            "'--target', 'efficientnet-lite0', '--method', 'fgsm']); "
            "print(r.exit_code, sorted(m for m in ('ray', 'pyarrow', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    exit_code, imported = done.stdout.strip().split(" ", 1)
    assert exit_code in ("0", "1"), done.stderr[-2000:]
    assert imported == "[]"


def test_a_file_that_is_not_an_image_is_reported_not_raised(tmp_path):
    from advpriv.protect.batch import completed, merge_metrics
    from advpriv.protect.files import protect_one

    out, report = protect_one(b"not an image", "odd.png", lambda image: None, "png", 10**6)
    assert out is None and report.error.startswith("odd.png")
    merge_metrics([report], tmp_path)
    assert completed(tmp_path) == {}
    assert json.loads((tmp_path / "advpriv-metrics.json").read_text())[0]["input"] == "odd.png"


def test_face_jobs_check_their_options_as_protect_does():
    from advpriv.protect.job import JobError, ProtectJob

    with pytest.raises(JobError, match="add --as PHOTO"):
        ProtectJob(mode="impersonate").options()
    with pytest.raises(JobError, match="--no-dlib leaves no face model"):
        ProtectJob(dlib=False, facenet=False).options()
    with pytest.raises(JobError, match="unknown mode 'hide'"):
        ProtectJob(mode="hide")
    assert ProtectJob(target="net.onnx:similarity=0.3").face_model == "net.onnx:similarity=0.3"
