"""Hostile output folders (issue 21, items 3 to 7): a tampered metrics table, two runs into one folder, SIGTERM,
names at the file system's limit, and broken links among the inputs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from advpriv.cli import app
from advpriv.protect.batch import completed, merge_metrics, plan_batch, protect_planned, records
from advpriv.protect.files import FileReport, make_protector

TOY = ["--target", "toy_models:tiny_classifier", "--steps", "40", "--strength", "low"]
TESTS = Path(__file__).resolve().parent
runner = CliRunner()


def _photo(path, seed=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def _protect(*args, out):
    result = runner.invoke(app, ["protect", *map(str, args), "-o", str(out), *TOY])
    result.said = " ".join(result.output.split())
    return result


def _rows(out):
    return json.loads((out / "advpriv-metrics.json").read_text())


def _toy_protector():
    return make_protector("toy_models:tiny_classifier", "mnd", steps=5)


def _within(seconds, fn, *args):
    """fn(*args), or fail when it has not returned after `seconds` (a hang must fail the test, not stop it)."""
    box = []
    thread = threading.Thread(target=lambda: box.append(fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"{fn.__name__} did not return within {seconds} s"
    return box[0]


@pytest.mark.parametrize("table", ["[{}]", '[{"input": 5}]', '[{"input": "a.png", "success": "yes"}]',
                                   '{"input": "a.png"}', "5", '[{"input": "a\\u0000b"}]'])
def test_a_tampered_metrics_table_is_dropped_with_one_warning_and_the_run_recorded(tmp_path, table):
    _photo(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "advpriv-metrics.json").write_text(table)
    result = _protect(tmp_path / "in", out=out)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.said
    assert result.said.count("warning") == 1 and result.said.count("dropped") == 1
    assert [Path(r["input"]).name for r in _rows(out)] == ["a.png"]
    assert len(completed(out)) == 1


def _record(tmp_path, output, sha):
    return [{"input": str(tmp_path / "in" / "a.png"), "output": str(output), "success": True, "sha256": sha}]


def test_an_output_outside_the_folder_is_not_honoured(tmp_path):
    _photo(tmp_path / "in" / "a.png")
    elsewhere = tmp_path / "hostname"
    elsewhere.write_text("some machine\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "inside").symlink_to(elsewhere)  # inside by name, outside by its target
    for output in [elsewhere, out / "inside", out / ".." / "hostname"]:
        sha = hashlib.sha256(elsewhere.read_bytes()).hexdigest()
        (out / "advpriv-metrics.json").write_text(json.dumps(_record(tmp_path, output, sha)))
        plan = plan_batch([tmp_path / "in"], out)
        assert plan.done == 0 and list(plan.outputs) == [tmp_path / "in" / "a.png"], output


def test_a_record_naming_a_file_advpriv_never_writes_cannot_choose_what_is_overwritten(tmp_path):
    _photo(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.png").write_bytes(b"the user's own file")
    (out / "advpriv-metrics.json").write_text(json.dumps(_record(tmp_path, out / "notes.png", "0" * 64)))
    plan = plan_batch([tmp_path / "in"], out)
    assert plan.own == set() and plan.outputs[tmp_path / "in" / "a.png"].name == "a.protected.png"
    assert (out / "notes.png").read_bytes() == b"the user's own file"


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_an_output_that_is_not_a_bounded_regular_file_is_not_read(tmp_path, kind, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    output = out / "a.protected.png"
    if kind == "fifo":
        os.mkfifo(output)
    elif kind == "device":
        output = Path("/dev/zero")
    else:
        with open(output, "wb") as f:
            f.truncate(1 << 40)  # sparse: a terabyte that takes no room
    (out / "advpriv-metrics.json").write_text(json.dumps(_record(tmp_path, output, "0" * 64)))
    assert _within(10, completed, out) == {}


def test_the_metrics_table_itself_a_fifo_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "advpriv-metrics.json")
    assert _within(10, records, tmp_path) == []


def test_two_runs_with_the_same_file_name_write_two_outputs(tmp_path):
    a, b = _photo(tmp_path / "dA" / "x.png", seed=1), _photo(tmp_path / "dB" / "x.png", seed=2)
    out = tmp_path / "out"
    plans = [plan_batch([a], out), plan_batch([b], out)]  # both planned before either writes: the same name
    assert list(plans[0].outputs.values()) == list(plans[1].outputs.values())
    protector = _toy_protector()
    for plan in plans:
        reports = list(protect_planned(plan, protector))
        assert not reports[0].error, reports[0].error
        merge_metrics(reports, out)
    assert sorted(p.name for p in out.glob("*.png")) == ["x.protected-1.png", "x.protected.png"]
    assert set(completed(out)) == {str(a.resolve()), str(b.resolve())}  # both outputs verify


def test_a_file_already_in_the_folder_is_never_overwritten(tmp_path):
    a = _photo(tmp_path / "in" / "x.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.protected.png").write_bytes(b"somebody else's")
    result = _protect(a, out=out)
    assert result.exit_code == 0, result.output
    assert (out / "x.protected.png").read_bytes() == b"somebody else's"
    assert [Path(r["output"]).name for r in _rows(out)] == ["x.protected-1.png"]


def test_an_input_protected_again_keeps_its_output_name(tmp_path):
    a = _photo(tmp_path / "in" / "x.png")
    out = tmp_path / "out"
    assert _protect(a, out=out).exit_code == 0
    again = _protect(a, "--force", out=out)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "advpriv-metrics.csv", "advpriv-metrics.json", "x.protected.png"]


def test_simultaneous_merges_keep_every_record(tmp_path):
    n = 6
    start = threading.Barrier(n)

    def merge(i):
        start.wait()
        merge_metrics([FileReport(input=f"in{i}.png", error="simulated")], tmp_path)

    threads = [threading.Thread(target=merge, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["input"] for r in _rows(tmp_path)) == [f"in{i}.png" for i in range(n)]


SLOW_RUN = """
import sys, time
from advpriv.protect import files
real = files.protect_encoded
def slow(*args):
    time.sleep(0.4)
    return real(*args)
files.protect_encoded = slow
from advpriv.cli import app
app(sys.argv[1:])
"""


def test_sigterm_keeps_the_finished_files_metrics_and_the_batch_resumes(tmp_path):
    for i in range(12):
        _photo(tmp_path / "in" / f"p{i:02}.png", seed=i)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    run = subprocess.Popen([sys.executable, "-c", SLOW_RUN, "protect", str(tmp_path / "in"), "-o", str(out), *TOY],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("p*.protected.png")) or (out / "p00.protected.png").stat().st_size == 0:
        assert run.poll() is None and time.monotonic() < deadline, "the run ended before any file was written"
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    said = " ".join(run.communicate(timeout=60)[0].split())
    assert run.returncode == 130, said
    assert "interrupted after" in said
    written = {p.name for p in out.glob("*.protected.png") if p.stat().st_size}
    recorded = {Path(r["output"]).name for r in _rows(out)}
    assert written and written == recorded and len(written) < 12
    assert not [p for p in out.glob("*.png") if p.stat().st_size == 0], "an empty claimed name was left behind"
    assert len(completed(out)) == len(written)  # a run again skips them


def test_a_long_name_fits_and_a_too_long_one_is_refused_before_protecting(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    fits = _photo(tmp_path / "in" / ("f" * (limit - len(".protected.png")) + ".png"))
    too_long = _photo(tmp_path / "in" / ("t" * (limit - len(".png")) + ".png"), seed=2)
    out = tmp_path / "out"
    called = []

    def protector(image):
        called.append(1)
        return _toy_protector()(image)

    reports = {Path(r.input).name[0]: r for r in protect_planned(plan_batch([fits, too_long], out), protector)}
    assert not reports["f"].error and len(Path(reports["f"].output).name) == limit
    assert "name" in reports["t"].error and "shorter" in reports["t"].error
    assert len(called) == 1  # the refused file was never protected
    assert sorted(len(p.name) for p in out.iterdir()) == [limit]


def test_broken_links_in_a_folder_are_named(tmp_path):
    _photo(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "loop.png").symlink_to("loop.png")
    (tmp_path / "in" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(tmp_path / "in" / "pipe.png")
    result = _protect(tmp_path / "in", out=tmp_path / "out")
    assert result.exit_code == 0, result.output
    for name in ["loop.png", "gone.png", "pipe.png"]:
        assert name in result.said
    assert "2 files broken symbolic links" in result.said and "1 file not a regular file" in result.said


def test_two_runs_of_ray_actors_with_the_same_file_name_write_two_outputs(tmp_path):
    pytest.importorskip("ray", reason="advpriv batch needs the scale extra: pip install -e '.[scale]'")
    from advpriv.protect.job import ProtectJob
    from advpriv.scale.ray_batch import _Protect

    a, b = _photo(tmp_path / "dA" / "x.png", seed=1), _photo(tmp_path / "dB" / "x.png", seed=2)
    out = tmp_path / "out"
    plans = [plan_batch([a], out), plan_batch([b], out)]
    job = ProtectJob(target="toy_models:tiny_classifier", strength="low", steps=40)
    for source, plan in zip([a, b], plans):  # the actor of each run, called as Ray Data calls it (no cluster needed)
        actor = _Protect(job, str(out), {str(source): str(plan.outputs[source])}, set(), "png", 10**6, 0, 1)
        actor({"path": np.array([str(source)], dtype=object), "bytes": np.array([source.read_bytes()])})
        # recorded by the actor itself: a driver killed by a scheduler after this loses nothing
        assert str(source) in completed(out)
    assert sorted(p.name for p in out.glob("*.png")) == ["x.protected-1.png", "x.protected.png"]
    assert set(completed(out)) == {str(a), str(b)}
