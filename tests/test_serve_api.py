"""`advpriv serve` against a real uvicorn server on a loopback port: protection, the DeepObfuscator cloud
endpoint with the onnxruntime client, limits, token, bad input, and a bounded load test."""

from __future__ import annotations

import asyncio
import base64
import inspect
import io
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from serving import running_server
from test_obfuscate_data import write_dataset

from advpriv.client import Client, ClientError, LocalEncoder
from advpriv.feature_wire import encode_features
from advpriv.obfuscate import TrainConfig, export_onnx, load_attributes, load_run, train
from advpriv.serve.cli import serve_command
from advpriv.serve.settings import TOKEN_ENV, ServeSettings, token_from_env
from advpriv.serve.sniff import sniff
from advpriv.serve.work import Busy, WorkQueue

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TINY_TARGET = "tiny=toy_models:tiny_classifier"


def png(width: int = 48, height: int = 36, seed: int = 0, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A tiny trained DeepObfuscator run and its encoder exported to ONNX."""
    torch.set_num_threads(1)
    data = load_attributes(write_dataset(tmp_path_factory.mktemp("faces"), n=24))
    cfg = TrainConfig(width=1 / 16, fc=16, pretrain_epochs=1, attacker_epochs=1, epochs=1, batch_size=8)
    folder = train(data, cfg, tmp_path_factory.mktemp("run"))
    run = load_run(folder)
    export_onnx(run.encoder("obfuscator"), run.config.image_size, folder / "encoder.onnx")
    return folder, data


@pytest.fixture(scope="module")
def server(run_folder, tmp_path_factory):
    """One server for most tests: token, small queue and limits, a tiny classifier, the cloud classifier."""
    tmpdir = tmp_path_factory.mktemp("server-tmp")
    args = ["--token", TOKEN, "--add-target", TINY_TARGET, "--features-run", str(run_folder[0]), "--workers", "1",
            "--queue", "2", "--max-upload-mb", "0.3", "--max-pixels", "250000", "--timeout", "120"]
    with running_server(*args, env={"TMPDIR": str(tmpdir)}) as url:
        yield url, tmpdir


def post_photo(url: str, data: bytes, name: str = "photo.png", headers=AUTH, **fields) -> httpx.Response:
    return httpx.post(f"{url}/v1/protect", files={"image": (name, data)}, data={"target": "tiny", **fields},
                      headers=headers, timeout=120)


def test_health_and_version_are_open(server):
    url, _ = server
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    version = httpx.get(f"{url}/v1/version").json()
    assert version["token_required"] and "tiny" in version["targets"] and "dlib" in version["targets"]
    assert version["features"]["attribute"] == "Smiling"
    form = httpx.get(f"{url}/openapi.json").json()["paths"]["/v1/protect"]["post"]["requestBody"]["content"]
    assert "tiny" in form["multipart/form-data"]["schema"]["properties"]["target"]["enum"]


def test_protect_returns_the_protected_image(server):
    url, _ = server
    reply = post_photo(url, png(), name="holiday.png", strength="low")  # a random 48×36 toy image: no EOT
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/png" and reply.headers["x-advpriv-success"] == "true"
    assert 'filename="holiday.protected.png"' in reply.headers["content-disposition"]
    out = Image.open(io.BytesIO(reply.content))
    assert out.size == (48, 36) and float(reply.headers["x-advpriv-psnr"]) > 30


def test_protect_json_has_metrics_and_the_image(server):
    url, _ = server
    reply = post_photo(url, png(seed=1), response="json", strength="high", format="jpg")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["strength"] == "high" and body["media_type"] == "image/jpeg" and body["faces"] == []
    assert body["metrics"]["ssim"] > 0.9 and isinstance(body["success"], bool) and body["summary"] != ""
    assert list(body["variants"]) == ["jpg", "jpeg85", "half"] and body["variants"]["jpg"]["summary"] == body["summary"]
    assert all(isinstance(v["success"], bool) and v["summary"] and v["faces"] == [] for v in body["variants"].values())
    assert body["survival"].startswith("jpg: ") and "; after jpeg85: " in body["survival"]
    assert Image.open(io.BytesIO(base64.b64decode(body["image_base64"]))).format == "JPEG"


def test_json_carries_one_verdict_and_progress_is_asked_by_job_id(server):
    url, _ = server
    job = "0123456789abcdef" * 2
    reply = post_photo(url, png(seed=2), response="json", strength="low", headers={**AUTH, "X-Advpriv-Job": job})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    verdict = body["verdict"]
    assert verdict["goal"] == "classifier" and verdict["attacked"] == ["tiny"]
    assert [c["name"] for c in verdict["copies"]] == list(body["variants"])
    assert (verdict["case"] == "none") == (not body["success"])
    assert [c["judges"][0]["reached"] for c in verdict["copies"]] == [v["success"] for v in body["variants"].values()]
    # The job has ended: its progress is gone; ids are checked, and progress needs the token like the work does.
    gone = httpx.get(f"{url}/v1/progress/{job}", headers=AUTH)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "no_job"
    assert httpx.get(f"{url}/v1/progress/{job}").status_code == 401
    bad = post_photo(url, png(), headers={**AUTH, "X-Advpriv-Job": "../etc"})
    assert bad.status_code == 422 and "32 lowercase hex digits" in bad.json()["error"]["message"]
    assert httpx.get(f"{url}/v1/version").json()["face_budgets"]["medium"] == {"min_ssim": 0.92, "max_ciede2000": 2.3,
                                                                              "max_change": 2.3}


def test_image_type_comes_from_the_content_not_the_name(server):
    url, _ = server
    assert post_photo(url, png(), name="really-a-png.jpg").status_code == 200
    assert post_photo(url, png(fmt="WEBP"), name="upload.bin").status_code == 200
    reply = post_photo(url, b"GIF89a? no, just text", name="cat.png")
    assert reply.status_code == 415 and reply.json()["error"]["code"] == "not_an_image"
    # Pillow could decode a PPM, but uploads are limited to the common photo formats.
    reply = post_photo(url, png(fmt="PPM"), name="photo.png")
    assert reply.status_code == 415 and reply.json()["error"]["code"] == "not_an_image"
    assert "accepts PNG, JPEG" in reply.json()["error"]["message"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF"])
def test_sniff_knows_what_pillow_writes(fmt):
    assert sniff(png(fmt=fmt)).upper() == fmt
    assert sniff(png(fmt=fmt)[:1]) is None


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_token_is_required(server, headers):
    url, _ = server
    reply = post_photo(url, png(), headers=headers)
    assert reply.status_code == 401 and "Authorization: Bearer" in reply.json()["error"]["message"]
    assert httpx.post(f"{url}/v1/features/predict", content=b"x", headers=headers).status_code == 401


def test_token_from_the_environment():
    with running_server("--add-target", TINY_TARGET, env={TOKEN_ENV: "from-env"}) as url:
        assert httpx.get(f"{url}/v1/version").json()["token_required"]
        assert post_photo(url, png(), headers={}).status_code == 401
        assert post_photo(url, png(), headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_defaults_listen_on_loopback_and_the_token_flag_wins(monkeypatch):
    assert inspect.signature(serve_command).parameters["host"].default == ServeSettings().host == "127.0.0.1"
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert token_from_env("from-flag") == "from-flag" and token_from_env(None) == "from-env"
    monkeypatch.setenv(TOKEN_ENV, "")
    assert token_from_env(None) is None


def test_bad_input_gets_a_clear_json_error(server):
    url, _ = server
    cases = {
        "truncated image": (post_photo(url, png()[:150]), 400, "bad_image"),
        "oversized upload": (post_photo(url, b"\0" * 400_000), 413, "too_large"),
        "oversized image": (post_photo(url, png(600, 600)), 413, "too_large"),
        "unknown option": (post_photo(url, png(), strength="max"), 422, "bad_option"),
        "unknown field": (post_photo(url, png(), stregth="high"), 422, "bad_option"),
        "path as target": (post_photo(url, png(), target="/etc/passwd"), 422, "bad_option"),
        "no image field": (httpx.post(f"{url}/v1/protect", data={"target": "tiny"}, headers=AUTH), 415, "bad_request_type"),
        "not multipart": (httpx.post(f"{url}/v1/protect", content=png(), headers=AUTH), 415, "bad_request_type"),
        "unknown route": (httpx.get(f"{url}/v2/nothing"), 404, "not_found"),
    }
    for case, (reply, status, code) in cases.items():
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), case
        assert len(reply.json()["error"]["message"]) > 20, case


def test_truncated_multipart_upload(server):
    url, _ = server
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + png()  # the closing boundary never comes
    reply = httpx.post(f"{url}/v1/protect", content=body,
                       headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "truncated"


def test_phone_cloud_split_end_to_end(server, run_folder):
    url, (folder, data) = server[0], run_folder
    encoder = LocalEncoder(folder / "encoder.onnx")
    images = [data.batch(torch.tensor([i]))[0] for i in range(4)]
    features = encoder(images)
    with Client(url, token=TOKEN) as client:
        got = client.predict_features(features)
        half = client.predict_features(encoder(images, fp16=True), fmt="safetensors")
    run = load_run(folder)
    with torch.no_grad():
        want = torch.sigmoid(run.parties("obfuscator")["C"](run.encoder("obfuscator")(torch.stack(images)))).tolist()
    assert [g["Smiling"] for g in got] == [w >= 0.5 for w in want]
    assert np.allclose([g["probability"] for g in got], want, atol=1e-4)
    assert np.allclose([h["probability"] for h in half], want, atol=2e-2)


def test_features_of_the_wrong_shape_or_dtype_are_refused(server, run_folder):
    url, _ = server
    shape = (2, *LocalEncoder(run_folder[0] / "encoder.onnx")(run_folder[1].batch(torch.tensor([0]))).shape[1:])
    with Client(url, token=TOKEN) as client:
        for bad in [np.zeros((2, 5, 3, 3), np.float32), np.zeros(shape, np.float64), np.zeros(shape, np.int8)]:
            with pytest.raises(ClientError) as e:
                client.predict_features(bad)
            assert e.value.status == 422 and "features have" in str(e.value)
    reply = httpx.post(f"{url}/v1/features/predict", content=b"not features", headers=AUTH)
    assert reply.status_code == 415 and reply.json()["error"]["code"] == "bad_features"
    nan = np.full(shape, np.nan, np.float32)
    reply = httpx.post(f"{url}/v1/features/predict", content=encode_features(nan), headers=AUTH)
    assert reply.status_code == 422


def test_client_protects_a_file_and_keeps_the_original(server, tmp_path):
    url, _ = server
    photo = tmp_path / "me.png"
    photo.write_bytes(png())
    with Client(url, token=TOKEN) as client:
        assert client.health()["status"] == "ok"
        report = client.protect(photo, out=tmp_path / "me.protected.png", target="tiny")
        assert (tmp_path / "me.protected.png").read_bytes() == report["image_bytes"]
        assert photo.read_bytes() == png()
        with pytest.raises(ValueError, match="original is kept"):
            client.protect(photo, out=photo, target="tiny")
    assert client.http.is_closed
    with Client(url, token="nope") as stranger, pytest.raises(ClientError, match="401"):
        stranger.protect(photo, target="tiny")


def test_bounded_load(server):
    """50 requests, 8 at a time, against 1 worker + 2 queue slots: every one answered, 503s only when full."""
    url, tmpdir = server
    photo = png(36, 36, seed=3)

    def one(_: int) -> httpx.Response:
        return post_photo(url, photo)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(one, range(50)))
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 3 and statuses.count(503) >= 1, statuses
    for r in replies:
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == "busy"
    health = httpx.get(f"{url}/healthz").json()
    assert health["status"] == "ok" and health["queue"]["running"] == health["queue"]["waiting"] == 0
    assert post_photo(url, photo).status_code == 200
    assert list(tmpdir.iterdir()) == []  # nothing spooled or written to disk


def test_outputs_are_saved_only_where_configured(tmp_path):
    out = tmp_path / "saved"
    with running_server("--add-target", TINY_TARGET, "--output-dir", str(out)) as url:
        body = post_photo(url, png(), name="a.png", headers={}, response="json").json()
        saved = httpx.get(url + body["url"])
        assert saved.status_code == 200 and saved.content == base64.b64decode(body["image_base64"])
        post_photo(url, png(), name="a.png", headers={})
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and all(n.endswith("-a.protected.png") for n in names)  # never overwritten


def test_a_slow_request_is_answered_504_and_the_server_recovers():
    with running_server("--add-target", TINY_TARGET, "--timeout", "0.05", "--queue", "0") as url:
        reply = post_photo(url, png(256, 256), headers={})
        assert reply.status_code == 504 and reply.json()["error"]["code"] == "timeout"
        for _ in range(100):  # the worker is told the deadline and frees its slot soon after
            if httpx.get(f"{url}/healthz").json()["queue"]["running"] == 0:
                break
            time.sleep(0.1)
        assert httpx.get(f"{url}/healthz").json()["queue"]["running"] == 0


def test_queue_refuses_when_full():
    queue, started, release = WorkQueue(workers=1, queue_size=0), threading.Event(), threading.Event()

    def blocking(deadline: float) -> str:
        started.set()
        release.wait(10)
        return "done"

    async def scenario() -> str:
        first = asyncio.ensure_future(queue.run(blocking, timeout=10))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        with pytest.raises(Busy) as busy:
            await queue.run(blocking, timeout=10)
        assert busy.value.retry_after >= 1 and queue.status() == {"running": 1, "waiting": 0, "capacity": 1}
        release.set()
        return await first

    assert asyncio.run(scenario()) == "done"
    assert queue.status()["running"] == 0


def test_faces_are_judged_by_every_configured_judge():
    from conftest import shared_path

    photo = shared_path("data", "celeba-id", "10010", "006193.jpg").read_bytes()
    judge = f"{shared_path('models', 'mobilefacenet.onnx')}:threshold=0.79"
    with running_server("--judge", judge, "--timeout", "300") as url:
        version = httpx.get(f"{url}/v1/version").json()
        assert version["judges"] == ["dlib", "mobilefacenet"]
        attacked = [member["name"] for member in version["ensemble"]]  # dlib, and FaceNet when fetched
        reply = httpx.post(f"{url}/v1/protect", files={"image": ("face.jpg", photo)}, data={"response": "json"},
                           timeout=300)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["before"] == "1 face" and len(body["faces"]) == 1
        verdicts = body["faces"][0]["judges"]
        assert list(verdicts) == [*attacked, "mobilefacenet"] and not verdicts["dlib"]["matches"]
        assert "dlib: 0/1 recognised" in body["summary"] and "mobilefacenet" in body["summary"]
        assert body["metrics"]["psnr"] > 35
        assert 30 < body["faces"][0]["quality"]["psnr"] <= body["metrics"]["psnr"] and body["faces"][0]["quality"]["ssim"] > 0.9
        assert list(body["variants"]) == ["png", "jpeg85", "half"] and body["variants"]["png"]["faces"] == body["faces"]
        half = body["variants"]["half"]
        assert half["summary"].startswith("dlib: ") and [f["box"] for f in half["faces"]] == [body["faces"][0]["box"]]
        assert body["survival"].startswith("png: dlib 0/1 · ") and " · mobilefacenet " in body["survival"] and "; after half: dlib " in body["survival"]
        no_face = httpx.post(f"{url}/v1/protect", files={"image": ("wall.png", png(200, 200))}, timeout=300)
        assert no_face.status_code == 422 and no_face.json()["error"]["code"] == "no_face"
        assert "wall.png" in no_face.json()["error"]["message"]
        assert "--aligned" not in no_face.json()["error"]["message"]  # the service offers no such option


def test_impersonation_takes_the_identity_as_photos():
    from conftest import shared_path

    people = shared_path("data", "celeba-id")
    photo = sorted((people / "10010").glob("*.jpg"))[0]
    identity = sorted((people / "10036").glob("*.jpg"))[:2]
    with running_server("--timeout", "300") as url, Client(url) as client:
        report = client.protect(photo, as_photos=identity, mode="impersonate", method="fgsm")
        assert report["mode"] == "impersonate" and re.fullmatch(  # FaceNet, when fetched, is attacked and judges too
            r"dlib: [01]/1 match the target(; facenet: [01]/1 match the target)?", report["summary"]), report["summary"]
        assert report["faces"][0]["judges"]["dlib"]["detected"]

        def refused(files: list, **fields: str) -> dict:
            reply = httpx.post(f"{url}/v1/protect", files=files, data=fields, timeout=300)
            assert reply.status_code == 422, reply.text
            return reply.json()["error"]

        face = ("me.jpg", photo.read_bytes())
        assert refused([("image", face)], mode="impersonate")["code"] == "missing_identity"
        wall = refused([("image", face), ("as", ("wall.png", png(200, 200)))], mode="impersonate")
        assert wall["code"] == "no_face" and "`as` photo wall.png" in wall["message"]
        assert "mode=impersonate" in refused([("image", face), ("as", face)])["message"]
        assert refused([("image", face), ("image", face)])["code"] == "missing_image"
        assert "unknown file field(s) extra" in refused([("image", face), ("extra", face)])["message"]
