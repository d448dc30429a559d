"""`advpriv models`: fetch from a local HTTP server (hash, resume, restart), add then list, the registry's entries."""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from advpriv.cli import app
from advpriv.faces.specs import OPTIONS, load_embedder
from advpriv.models import registry
from advpriv.models.download import DownloadError, fetch, model_path, models_cache
from advpriv.models.registry import REGISTRY, ModelEntry
from advpriv.models.user_models import UserModelsError, add_model, config_file, read_models
from test_faces_onnx import EMBED, tiny_onnx

FACENET_WEIGHTS = model_path(REGISTRY["facenet"])  # the user's fetched weights, before a test moves the cache

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Server(ThreadingHTTPServer):
    """Serves PAYLOAD at any path; `cut_after` bytes then drops the connection (once); `ranges` honours Range."""

    def __init__(self, ranges: bool) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.ranges, self.cut_after, self.requests = ranges, None, []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/model.onnx"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        start = 0
        asked = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        self.server.requests.append(self.headers.get("Range"))
        if asked and self.server.ranges:
            start = int(asked.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        body = PAYLOAD[start:]
        if self.server.cut_after is not None:
            body, self.server.cut_after = body[: self.server.cut_after], None
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADVPRIV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ADVPRIV_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def serve(ranges: bool = True):
    server = Server(ranges)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def entry(url: str, sha256: str = hashlib.sha256(PAYLOAD).hexdigest()) -> ModelEntry:
    return ModelEntry("tiny", url, sha256, len(PAYLOAD), "MIT", "tiny.onnx", {"similarity": "0.3"})


def test_fetch_downloads_once_and_checks_the_hash(dirs: Path) -> None:
    server = serve()
    path = fetch(entry(server.url))
    assert path == model_path(entry(server.url)) and path.read_bytes() == PAYLOAD
    assert fetch(entry(server.url)) == path and len(server.requests) == 1
    server.shutdown()


def test_a_wrong_hash_is_refused_and_nothing_stays(dirs: Path) -> None:
    server = serve()
    with pytest.raises(DownloadError, match="not the expected"):
        fetch(entry(server.url, "0" * 64))
    assert [p for p in models_cache().rglob("*") if p.is_file()] == []
    server.shutdown()


@pytest.mark.parametrize("ranges", [True, False], ids=["resumes", "restarts"])
def test_an_interrupted_download_resumes_or_restarts(dirs: Path, ranges: bool) -> None:
    server = serve(ranges)
    server.cut_after = len(PAYLOAD) // 2
    with pytest.raises(DownloadError, match="run the same command again"):
        fetch(entry(server.url))
    assert not model_path(entry(server.url)).exists()
    assert fetch(entry(server.url)).read_bytes() == PAYLOAD
    assert server.requests == [None, f"bytes={len(PAYLOAD) // 2}-"]
    server.shutdown()


def test_fetch_command_refuses_a_bad_file_and_names_unknown_models(dirs: Path, monkeypatch) -> None:
    server = serve()
    monkeypatch.setitem(REGISTRY, "tiny", entry(server.url, "f" * 64))
    result = CliRunner().invoke(app, ["models", "fetch", "tiny"])
    assert result.exit_code == 1 and "deleted" in result.output
    assert not config_file().exists()
    result = CliRunner().invoke(app, ["models", "fetch", "nope"])
    assert result.exit_code == 2 and "sface" in result.output
    server.shutdown()


def test_add_then_list_round_trips_and_protect_attacks_it(dirs: Path, monkeypatch) -> None:
    model = tiny_onnx(dirs / "mine [v2].onnx", EMBED, ["N", 4])
    runner = CliRunner()
    added = runner.invoke(app, ["models", "add", str(model), "--similarity", "0.4", "--range", "0..255",
                                "--name", "mine", "--licence", "MIT"])
    assert added.exit_code == 0, added.output
    (record,) = read_models()
    assert (record.name, record.path, record.options) == ("mine", str(model), {"similarity": "0.4", "range": "0..255"})
    listed = runner.invoke(app, ["models", "list"], env={"COLUMNS": "80"})
    assert listed.exit_code == 0 and max(map(len, listed.output.splitlines())) <= 80
    assert "mine" in listed.output and "range=0..255" in listed.output and "MIT" in listed.output
    assert "[v2]" in listed.output  # a user's path is shown as text, not read as markup
    again = runner.invoke(app, ["models", "add", str(model), "--threshold", "0.5", "--name", "mine"])
    assert again.exit_code == 2 and "already" in again.output
    model.write_bytes(model.read_bytes() + b"\0")
    assert "has changed" in runner.invoke(app, ["models", "list"], env={"COLUMNS": "80"}).output
    assert runner.invoke(app, ["models", "remove", "mine"]).exit_code == 0 and read_models() == []


def test_protect_job_attacks_the_added_models(dirs: Path) -> None:
    from advpriv.protect.job import ProtectJob

    add_model(tiny_onnx(dirs / "mine.onnx", EMBED, ["N", 4]), {"similarity": "0.4"})
    embedders = ProtectJob(aligned=True)._face_options()["embedders"]
    assert [e.name for e in embedders] == ["dlib", "mine"]


def test_pixel_range_feeds_eight_bit_values(dirs: Path) -> None:
    model = tiny_onnx(dirs / "m.onnx", EMBED, ["N", 4])
    chips = torch.rand(2, 3, 32, 32)
    as_pixels = load_embedder(f"{model}:similarity=0.3,range=0..255").model(chips)
    as_unit = load_embedder(f"{model}:similarity=0.3").model(chips * 255)
    torch.testing.assert_close(as_pixels, as_unit)


def test_add_refuses_what_cannot_load_and_bad_config_files(dirs: Path) -> None:
    with pytest.raises(UserModelsError, match="threshold"):
        add_model(tiny_onnx(dirs / "m.onnx", EMBED, ["N", 4]), {})
    for reserved in ("dlib", "facenet"):
        with pytest.raises(UserModelsError, match="built-in"):
            add_model(tiny_onnx(dirs / "m.onnx", EMBED, ["N", 4]), {"similarity": "0.3", "name": reserved})
    with pytest.raises(UserModelsError, match="no ONNX file"):
        add_model(dirs / "absent.onnx", {"similarity": "0.3"})
    config_file().parent.mkdir(parents=True)
    config_file().write_text('{"version": 1, "models": [{"name": "x", "path": "/m.onnx", "sha256": "zz"}]}')
    with pytest.raises(UserModelsError, match="model 1 is not valid"):
        read_models()
    config_file().write_text("not json")
    with pytest.raises(UserModelsError, match="cannot be read"):
        read_models()


def test_registry_entries_are_well_formed() -> None:
    for name, e in registry.REGISTRY.items():
        assert e.name == name and re.fullmatch(r"[0-9a-f]{64}", e.sha256) and e.url.startswith("https://")
        assert e.licence and e.size > 0 and e.filename and "/" not in e.filename
        assert set(e.contract) <= set(OPTIONS) - {"name"}
        assert e.loader is not None or {"threshold", "similarity"} & set(e.contract)
        assert (e.member_sha256 is None) or re.fullmatch(r"[0-9a-f]{64}", e.member_sha256)


def test_the_service_lists_its_ensemble(dirs: Path) -> None:
    from fastapi.testclient import TestClient

    from advpriv.serve import create_app

    add_model(tiny_onnx(dirs / "mine.onnx", EMBED, ["N", 4]), {"similarity": "0.4"}, "MIT")
    ensemble = TestClient(create_app()).get("/v1/version").json()["ensemble"]
    assert [(m["name"], m["licence"]) for m in ensemble] == [("dlib", "CC0-1.0"), ("mine", "MIT")]


@pytest.mark.parametrize("fetched", [False, True], ids=["facenet-missing", "facenet-fetched"])
def test_models_list_the_service_and_protect_agree_on_the_default_ensemble(dirs: Path, fetched: bool) -> None:
    from fastapi.testclient import TestClient

    from advpriv.models.ensemble import load_ensemble
    from advpriv.protect.job import ProtectJob
    from advpriv.serve import create_app

    if fetched:
        if not FACENET_WEIGHTS.is_file():
            pytest.skip(f"{FACENET_WEIGHTS} not found: fetch FaceNet's weights first (advpriv models fetch facenet)")
        model_path(REGISTRY["facenet"]).parent.mkdir(parents=True)
        model_path(REGISTRY["facenet"]).symlink_to(FACENET_WEIGHTS)
    add_model(tiny_onnx(dirs / "mine.onnx", EMBED, ["N", 4]), {"similarity": "0.4"}, "MIT")
    expected = ["dlib", *["facenet"] * fetched, "mine"]
    listed = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert re.findall(r"^│ (\S+) ", listed.output, re.MULTILINE) == expected, listed.output
    service = TestClient(create_app()).get("/v1/version").json()["ensemble"]
    assert [m["name"] for m in service] == expected
    assert [e.name for e in load_ensemble()] == expected  # what the service's workers attack
    assert [e.name for e in ProtectJob(aligned=True)._face_options()["embedders"]] == expected
    (dirs / "empty").mkdir()
    protect = CliRunner().invoke(app, ["protect", str(dirs / "empty"), "-o", str(dirs / "out")], env={"COLUMNS": "80"})
    note = "facenet not fetched: the default face ensemble goes without it; fetch it once with advpriv models fetch"
    assert (note in " ".join(protect.output.split())) != fetched, protect.output
    assert (note in " ".join(listed.output.split())) != fetched
