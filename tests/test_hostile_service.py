"""`advpriv serve` under hostile and odd requests (issue 12): each case once made the service answer 500, hold a
worker past its answer, or hold memory; here each must get a clear 4xx (or 503/504) and leave the server serving.

Traffic goes only to servers started on 127.0.0.1; inputs are small (a header announcing many pixels compresses
to a few KB), and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from urllib.parse import unquote, urlparse

import hostile_jobs
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serving import running_server
from test_serve_api import run_folder  # noqa: F401  (a tiny trained DeepObfuscator run, shared fixture)

from advpriv.feature_wire import FeatureError, decode_features
from advpriv.serve import ServeSettings, create_app
from advpriv.serve.isolate import ProcessPool, WorkerDied
from advpriv.serve.work import Busy, WorkQueue

TOKEN = "hostile-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TINY_TARGET = "tiny=toy_models:tiny_classifier"


def flat_png(width: int, height: int, seed: int = 0) -> bytes:
    """A grey PNG with a little noise in one corner: no face, and a few KB even at millions of pixels."""
    pixels = np.full((height, width, 3), 128, np.uint8)
    corner = pixels[:8, :8]
    corner[...] = np.random.default_rng(seed).integers(0, 256, corner.shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(run_folder):  # noqa: F811
    """Token, the tiny classifier, the cloud classifier, small request limits and short upload timeouts."""
    args = ["--token", TOKEN, "--add-target", TINY_TARGET, "--features-run", str(run_folder[0]), "--timeout", "60",
            "--max-as-photos", "2", "--max-request-pixels", "300000", "--max-pixels", "250000",
            "--header-timeout", "1", "--body-timeout", "2", "--max-uploads", "2"]
    with running_server(*args) as url:
        yield url


def protect(url: str, files: list, **fields: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/protect", files=files, data={"target": "tiny", **fields}, headers=AUTH, timeout=60)


def error_of(reply: httpx.Response, status: int | None = None) -> dict:
    """The JSON error of a 4xx reply (of exactly `status` when given); fails on a 5xx or a success."""
    assert 400 <= reply.status_code < 500 and (status is None or reply.status_code == status), reply.text
    error = reply.json()["error"]
    assert error["code"] != "internal" and len(error["message"]) > 20, error
    return error


def connect(url: str) -> socket.socket:
    parsed = urlparse(url)
    return socket.create_connection((parsed.hostname, parsed.port), timeout=10)


def read_until_closed(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (anything it sends first is read and dropped)."""
    sock.settimeout(seconds)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            if not sock.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


# ---- 1. memory amplification ----

def test_identity_photos_are_bounded_in_number(server):
    face, blank = ("me.png", flat_png(48, 36)), ("x.png", flat_png(48, 36))
    error = error_of(protect(server, [("image", face), *[("as", blank)] * 3], target="dlib", mode="impersonate"), 422)
    assert error["code"] == "too_many_photos" and "at most 2" in error["message"]


def test_pixels_per_request_are_bounded_before_decoding(server):
    """Each photo is within the per-photo limit (250,000 pixels), but together they are over the request's 300,000."""
    big = ("big.png", flat_png(500, 400))
    files = [("image", ("me.png", flat_png(200, 200))), ("as", big), ("as", big)]
    error = error_of(protect(server, files, target="dlib", mode="impersonate"), 413)
    assert error["code"] == "too_large" and "per request" in error["message"]
    # 9 million pixels in a 30 KB body: refused from its header alone.
    error = error_of(protect(server, [("image", ("bomb.png", flat_png(3000, 3000)))]), 413)
    assert "bomb.png" in error["message"]


# ---- 2. a timeout frees the worker ----

def test_a_timed_out_request_frees_its_worker_at_once():
    """A 3000×3000 photo with no face keeps dlib's detector busy for seconds; at the 504 the work must stop."""
    with running_server("--add-target", TINY_TARGET, "--timeout", "2", "--queue", "0") as url:
        warm = httpx.post(f"{url}/v1/protect", files={"image": ("small.png", flat_png(64, 64))}, timeout=60)
        assert warm.status_code == 422, warm.text  # the worker is ready: a small photo is told it has no face
        reply = httpx.post(f"{url}/v1/protect", files={"image": ("wall.png", flat_png(3000, 3000))}, timeout=60)
        assert reply.status_code == 504 and reply.json()["error"]["code"] == "timeout", reply.text
        time.sleep(0.5)
        assert httpx.get(f"{url}/healthz").json()["queue"]["running"] == 0
        health = httpx.get(f"{url}/healthz").json()["workers"]
        assert health == {"total": 1, "starting": 1}  # its replacement is starting
        soon = httpx.post(f"{url}/v1/protect", files={"image": ("small.png", flat_png(64, 64))}, timeout=60)
        assert soon.status_code == 503 and soon.json()["error"]["code"] == "starting" and soon.headers["retry-after"]


def test_worker_processes_are_killed_at_the_deadline_and_replaced():
    pool = ProcessPool(1)
    try:
        assert pool.call(hostile_jobs.answer, (1,), deadline=time.monotonic() + 60) == 1  # started and ready
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            pool.call(hostile_jobs.overrun, (), deadline=time.monotonic() + 1)
        assert time.monotonic() - start < 5  # at the deadline, not when the work would have ended
        with pytest.raises(WorkerDied, match="exit code 9"):
            pool.call(hostile_jobs.crash, (), deadline=time.monotonic() + 60)
        assert pool.call(hostile_jobs.answer, (7,), deadline=time.monotonic() + 60) == 7
    finally:
        pool.stop()


# ---- 3. slow and unfinished uploads ----

def test_slow_headers_are_cut_off(server):
    with connect(server) as sock:
        sock.sendall(b"POST /v1/protect HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(3):  # a byte now and then resets a keep-alive timer, not this one
            time.sleep(0.4)
            sock.sendall(b"X")
        assert closed_within(sock, 3)


def test_slow_bodies_get_408_and_uploads_are_capped(server):
    head = (f"POST /v1/protect HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 200000\r\n\r\n--b\r\n").encode()
    slow = [connect(server) for _ in range(2)]
    try:
        for sock in slow:
            sock.sendall(head)
        time.sleep(0.3)
        assert httpx.get(f"{server}/healthz").json()["receiving"] == 2
        third = httpx.post(f"{server}/v1/protect", files={"image": ("a.png", flat_png(48, 36))}, headers=AUTH)
        assert third.status_code == 503 and third.json()["error"]["code"] == "busy" and third.headers["retry-after"]
        for sock in slow:
            answer = read_until_closed(sock, 5)
            assert answer.startswith(b"HTTP/1.1 408") and b"upload_timeout" in answer, answer
    finally:
        for sock in slow:
            sock.close()
    assert httpx.get(f"{server}/healthz").json()["receiving"] == 0


# ---- 4. file names that are not Latin-1 ----

def test_non_latin1_file_names_are_sent_back_by_rfc5987(server):
    reply = protect(server, [("image", ("日本 photo.png", flat_png(48, 36)))], strength="low")
    assert reply.status_code == 200, reply.text
    disposition = reply.headers["content-disposition"]
    assert disposition.isascii() and 'filename="' in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "日本_photo.protected.png"


# ---- 5. tiny and thin images ----

@pytest.mark.parametrize("size", [(1, 1), (1, 40), (40000, 1)])
@pytest.mark.parametrize("target", ["tiny", "dlib"])
def test_tiny_and_thin_images_get_a_4xx_naming_the_file(server, size, target):
    error = error_of(protect(server, [("image", ("odd.png", flat_png(*size)))], target=target))
    assert "odd.png" in error["message"]


# ---- 6. crafted .npy headers ----

def npy_claiming(shape: tuple[int, ...], payload: bytes = b"\0" * 64, descr: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def test_a_huge_npy_shape_is_refused_before_allocating(server):
    with pytest.raises(FeatureError, match="announces shape"):
        decode_features(npy_claiming((2**40, 16, 16, 13)), expected=(16, 16, 13))
    with pytest.raises(FeatureError, match="dtype"):
        decode_features(npy_claiming((1, 2), descr="|O"), expected=(2,))
    z = np.arange(6, dtype=np.float16).reshape(1, 2, 3)
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(z))
    assert np.array_equal(decode_features(buf.getvalue(), expected=(2, 3)), z)
    reply = httpx.post(f"{server}/v1/features/predict", content=npy_claiming((2**40, 8, 8)),
                       headers={**AUTH, "Content-Type": "application/x-npy"})
    assert error_of(reply)["code"] == "bad_features"


# ---- 7. Retry-After follows the work ahead ----

def test_retry_after_follows_the_running_jobs():
    """Quick refusals in the history must not make a 12 s protection look like 1 s."""
    queue, started, release = WorkQueue(workers=1, queue_size=1), threading.Event(), threading.Event()
    queue.durations.extend([0.01] * 5)

    def slow(deadline: float) -> str:
        started.set()
        release.wait(10)
        return "done"

    async def scenario() -> int:
        running = asyncio.ensure_future(queue.run(slow, timeout=30))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        await asyncio.sleep(1.2)
        waiting = asyncio.ensure_future(queue.run(lambda deadline: "next", timeout=30))
        await asyncio.sleep(0)
        try:
            with pytest.raises(Busy) as busy:
                await queue.run(lambda deadline: "refused", timeout=30)
            return busy.value.retry_after
        finally:
            release.set()
            await asyncio.gather(running, waiting)

    assert asyncio.run(scenario()) >= 3  # 2 jobs ahead, the running one already 1.2 s in


# ---- 8. smaller items ----

def test_version_shows_no_server_path_and_bearer_is_case_insensitive(server, run_folder):  # noqa: F811
    version = httpx.get(f"{server}/v1/version").text
    assert str(run_folder[0]) not in version and run_folder[0].name not in version
    for scheme in ("bearer", "BEARER"):
        reply = httpx.post(f"{server}/v1/protect", files={"image": ("a.png", flat_png(48, 36))},
                           data={"target": "tiny", "strength": "low"}, headers={"Authorization": f"{scheme} {TOKEN}"},
                           timeout=60)
        assert reply.status_code == 200, (scheme, reply.text)
    reply = httpx.post(f"{server}/v1/features/predict", content=b"x", headers={"Authorization": f"Basic {TOKEN}"})
    assert error_of(reply, 401)["code"] == "unauthorized"


def test_docs_are_off_unless_asked_for(server):
    assert httpx.get(f"{server}/docs").status_code == 404
    assert "/v1/protect" in httpx.get(f"{server}/openapi.json").json()["paths"]  # the schema needs no CDN
    client = TestClient(create_app(ServeSettings(docs=True)))  # in process: no socket, no worker, nothing fetched
    assert client.get("/docs").status_code == 200
