"""Both servers under hostile and odd traffic (issue 21, items 13 to 15): readiness, a queue wait never counted as
work time, the connection cap's answer, error bodies bounded in size, and the study server's limits, invitations
and score checks.

Traffic goes only to servers started on 127.0.0.1, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from serving import free_port, running_advpriv
from test_hostile_inputs import avif
from test_hostile_service import closed_within, connect, error_of, flat_png, read_until_closed
from test_study_server import study  # noqa: F401  (a small study folder, shared fixture)
from typer.testing import CliRunner

from advpriv.cli import app
from advpriv.serve.work import WorkQueue
from advpriv.study.invites import INVITES, Invites, add_invites, drop_rater
from advpriv.study.manifest import load_manifest
from advpriv.study.report import SCALE, mean_interval, study_report
from advpriv.study.store import RATINGS, Rating, RatingStore

TINY_TARGET = "tiny=toy_models:tiny_classifier"


# ---- 13. readiness ----

def watch_health(url: str, seen: list, stop: threading.Event) -> None:
    """Record each answer of /healthz from the server's first moment until it says 200."""
    while not stop.is_set():
        try:
            reply = httpx.get(f"{url}/healthz", timeout=2)
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        seen.append((reply.status_code, reply.json(), reply.headers.get("retry-after")))
        if reply.status_code == 200:
            return
        time.sleep(0.05)


@pytest.fixture(scope="module")
def service():
    """A server watched from its first moment: /healthz's answers until it said ok, then the first protection's."""
    port, seen, stop = free_port(), [], threading.Event()
    watcher = threading.Thread(target=watch_health, args=(f"http://127.0.0.1:{port}", seen, stop))
    watcher.start()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--add-target", TINY_TARGET,
            "--max-connections", "3", "--max-upload-mb", "12"]
    try:
        with running_advpriv(args, port) as url:  # returns at the first 200 from /healthz
            first = httpx.post(f"{url}/v1/protect", files={"image": ("a.png", flat_png(48, 36))},
                               data={"target": "tiny"}, timeout=60)
            stop.set()
            watcher.join()
            yield url, seen, first
    finally:
        stop.set()
        watcher.join()


def test_healthz_says_ok_only_when_a_worker_can_take_a_job(service):
    _, seen, first = service
    assert first.status_code == 200, first.text  # the first request after "ok" is served, not told "starting"
    *starting, (status, ready, _) = seen
    assert status == 200 and ready["status"] == "ok" and ready["workers"]["starting"] == 0
    assert starting and all(s == 503 and body["status"] == "starting" and retry.isdigit()
                            for s, body, retry in starting)


def test_waiting_in_the_queue_does_not_count_against_the_timeout():
    """Two 0.6 s jobs, one worker, a 1 s limit: the second waits 0.6 s, works 0.6 s, and must not time out."""
    queue = WorkQueue(workers=1, queue_size=1)

    def job(deadline: float) -> float:
        time.sleep(0.6)
        return deadline

    async def both() -> list:
        return await asyncio.gather(queue.run(job, timeout=1.0), queue.run(job, timeout=1.0))

    first, second = asyncio.run(both())
    assert second - first >= 0.5  # each deadline counts from its own start
    with pytest.raises(TimeoutError):
        asyncio.run(queue.run(lambda deadline: time.sleep(1.5), timeout=0.5))
    queue.shutdown()


# ---- 14. edge responses ----

def test_past_max_connections_the_answer_is_json_with_retry_after(service):
    assert_connections_capped(service[0], 3)


def assert_connections_capped(url: str, cap: int) -> None:
    held = [connect(url) for _ in range(cap)]
    try:
        time.sleep(0.2)
        reply = httpx.get(f"{url}/healthz", timeout=10)
        assert reply.status_code == 503 and reply.headers["retry-after"].isdigit()
        assert reply.json()["error"]["code"] == "too_many_connections"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


def test_an_avif_whose_header_lies_is_refused_by_the_service(service):
    files = {"image": ("lying.avif", avif(1600, stated=200))}
    reply = httpx.post(f"{service[0]}/v1/protect", files=files, data={"target": "tiny"}, timeout=60)
    assert "header says 200×200" in error_of(reply, 400)["message"]


def test_an_error_does_not_echo_a_huge_value(service):
    url, huge = service[0], "x" * 10_000_000
    reply = httpx.post(f"{url}/v1/protect", files={"image": ("a.png", flat_png(48, 36))},
                       data={"target": huge}, timeout=60)
    assert error_of(reply, 422)["code"] == "bad_option" and len(reply.content) < 2000
    reply = httpx.post(f"{url}/v1/protect", files={"image": ("a.png", flat_png(48, 36))},
                       data={huge: "1"}, timeout=60)
    assert error_of(reply) and len(reply.content) < 2000  # a 10 MB field name: refused by the form parser


# ---- 15. the study server ----

@pytest.fixture
def invited(study):  # noqa: F811
    """The study of tests/test_study_server.py with two invited raters: token -> rater id."""
    return study, add_invites(study, 2)


@pytest.fixture
def study_url(invited):
    study, links = invited
    port = free_port()
    args = ["study", "serve", str(study), "--port", str(port), "--header-timeout", "1", "--body-timeout", "1",
            "--max-connections", "3"]
    with running_advpriv(args, port) as url:
        yield url, study, links


def answer(pair: str, invite: str, **fields) -> dict:
    return {"invite": invite, "pair": pair, "mode": "dsis", "score": 4, "seconds": 2.5, **fields}


def test_only_invited_raters_answer_under_the_id_of_their_link(study_url):
    url, study, links = study_url
    pair = load_manifest(study).pairs[0].id
    (token, rater), (other, _) = links.items()
    post = lambda body: httpx.post(f"{url}/v1/ratings", json=body, timeout=10)  # noqa: E731
    assert error_of(post(answer(pair, "made-up")), 403)["code"] == "not_invited"
    assert error_of(post({**answer(pair, token), "rater": "r-99"}), 422)  # the rater id comes from the link only
    for bad in ("5", True, 4.0, 7, None):
        assert error_of(post(answer(pair, token, score=bad)), 422)
    assert post(answer(pair, token)).status_code == 201
    assert [r.rater for r in RatingStore(study / RATINGS).all()] == [rater]
    drop_rater(study, rater)
    assert error_of(post(answer(pair, token)), 403)["code"] == "not_invited"  # dropped: the link stops at once
    assert post(answer(pair, other)).status_code == 201


def test_study_bodies_headers_and_connections_are_limited(study_url):
    url, study, links = study_url
    big = httpx.post(f"{url}/v1/ratings", content=b'{"invite": "' + b"x" * 1_000_000 + b'"}',
                     headers={"Content-Type": "application/json"}, timeout=10)
    assert error_of(big, 413)["code"] == "too_large"
    with connect(url) as sock:  # headers a byte at a time
        sock.sendall(b"POST /v1/ratings HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(3):
            time.sleep(0.3)
            sock.sendall(b"X")
        assert closed_within(sock, 3)
    with connect(url) as sock:  # a body that never comes
        sock.sendall(b"POST /v1/ratings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{")
        assert read_until_closed(sock, 5).startswith(b"HTTP/1.1 408")
    assert_connections_capped(url, 3)


def test_the_report_lists_and_drops_a_rater_and_keeps_its_interval_on_the_scale(invited):
    study, links = invited
    store, pairs = RatingStore(study / RATINGS), load_manifest(study).pairs
    honest, spammer = links.values()
    for pair in pairs:
        store.add(Rating(honest, pair.id, pair.method, "dsis", 1 if pair.method == "brighter" else 2, None, 3.0))
    for _ in range(50):
        store.add(Rating(spammer, pairs[0].id, pairs[0].method, "dsis", 5, None, 0.1))
    listed = CliRunner().invoke(app, ["study", "report", str(study), "--raters"])
    assert listed.exit_code == 0 and f"{spammer}" in listed.output and "50" in listed.output
    dropped = CliRunner().invoke(app, ["study", "report", str(study), "--drop", spammer])
    assert dropped.exit_code == 0 and f"{spammer} (50 rating(s))" in dropped.output
    report = study_report(study)
    assert report.humans.raters == [honest] and report.total == 50 + len(pairs)
    assert all(1 <= m.mos_low <= m.mos <= m.mos_high <= 5 for m in report.humans.methods if m.mos_low is not None)
    unknown = CliRunner().invoke(app, ["study", "report", str(study), "--drop", "nobody"])
    assert unknown.exit_code == 2 and "no rater named" in unknown.output


def test_a_mos_interval_stays_on_the_scale():
    mos, low, high = mean_interval([1, 2], SCALE)  # a t-interval of [-4.85, 7.85]
    assert mos == 1.5 and (low, high) == SCALE


def test_study_make_prints_one_invitation_per_rater(tmp_path, study):  # noqa: F811
    originals = tmp_path / "originals"
    result = CliRunner().invoke(app, ["study", "make", str(tmp_path / "new"), "--originals", str(originals),
                                      "--method", f"brighter={tmp_path / 'brighter'}", "--raters", "3",
                                      "--url", "http://example.org:8001"])
    assert result.exit_code == 0, result.output
    links = [line.split(": ", 1)[1] for line in result.output.splitlines() if "?invite=" in line]
    assert len(set(links)) == 3 and all(link.startswith("http://example.org:8001/?invite=") for link in links)
    invites = Invites.load(tmp_path / "new")
    assert sorted(invites.rater_of(link.rsplit("=", 1)[1]) for link in links) == ["r-01", "r-02", "r-03"]
    assert not any(link.rsplit("=", 1)[1] in (tmp_path / "new" / INVITES).read_text() for link in links)
