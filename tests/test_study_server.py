"""`advpriv study serve`: the rating page in Chromium (driven by Playwright) and a store that survives a restart.

The browser test is skipped, with the reason, when playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image
from conftest import CHROMIUM
from serving import free_port, running_advpriv

from advpriv.study.invites import add_invites
from advpriv.study.make import make_study
from advpriv.study.manifest import load_manifest
from advpriv.study.report import study_report
from advpriv.study.store import RATINGS, RatingStore

WIDTH, HEIGHT = 320, 240
SHOW, GAP = 3.0, 1.0  # the browser test drives the page's clock, so these cost no time


@contextlib.contextmanager
def study_server(folder: Path, ready_s: float = 60) -> Iterator[str]:
    """Yield the URL of `advpriv study serve FOLDER` on a free loopback port; stop it afterwards."""
    port = free_port()
    with running_advpriv(["study", "serve", str(folder), "--port", str(port)], port, ready_s=ready_s) as url:
        yield url


@pytest.fixture
def study(tmp_path) -> Path:
    """Two originals, one method (brighter by 2 levels), one identical and one noisy reference, one repeat."""
    rng = np.random.default_rng(1)
    originals, method = tmp_path / "originals", tmp_path / "brighter"
    originals.mkdir()
    method.mkdir()
    for stem in ("x", "y"):
        pixels = rng.integers(20, 230, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(originals / f"{stem}.png")
        Image.fromarray(pixels + 2).save(method / f"{stem}.protected.png")
    folder = tmp_path / "study"
    make_study(originals, {"brighter": method}, folder, identical=1, noisy=1, repeats=1, show_seconds=SHOW,
               gap_seconds=GAP)
    return folder


def test_ratings_survive_a_restart_and_bad_answers_are_refused(study):
    [(token, rater)] = add_invites(study, 1).items()
    with study_server(study) as url:
        described = httpx.get(f"{url}/v1/study").json()
        assert len(described["pairs"]) == 4 and "method" not in str(described)  # the page never learns the method
        first = described["pairs"][0]["id"]
        answer = {"invite": token, "pair": first, "mode": "dsis", "score": 4, "seconds": 2.5}
        assert httpx.post(f"{url}/v1/ratings", json=answer).status_code == 201
        bad = httpx.post(f"{url}/v1/ratings", json={**answer, "score": 7})
        assert bad.status_code == 422 and "score from 1 to 5" in bad.json()["error"]["message"]
        unknown = httpx.post(f"{url}/v1/ratings", json={**answer, "pair": "p99"})
        assert unknown.status_code == 422 and "not in this study" in unknown.json()["error"]["message"]
        assert httpx.get(f"{url}/images/..%2Fstudy.json").status_code == 404
    with study_server(study) as url:
        answer = {"invite": token, "pair": first, "mode": "choice", "choice": "changed", "seconds": 1.0}
        assert httpx.post(f"{url}/v1/ratings", json=answer).status_code == 201
    stored = RatingStore(study / RATINGS).all()
    assert [(r.rater, r.pair, r.mode, r.score, r.choice, r.seconds) for r in stored] == [
        (rater, first, "dsis", 4, None, 2.5), (rater, first, "choice", None, "changed", 1.0)]
    assert study_report(study).total == 2
    with contextlib.closing(sqlite3.connect(study / RATINGS)) as db:  # nothing else about the rater is stored
        assert [row[1] for row in db.execute("PRAGMA table_info(ratings)")] == [
            "rater", "pair", "method", "mode", "score", "choice", "seconds"]


def assert_native(page, selector: str, study: Path) -> None:
    """The photo on screen is the file's pixels exactly: not scaled, not resampled by a fractional position."""
    box = page.eval_on_selector(selector, "e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }")
    assert box[2:] == [WIDTH, HEIGHT] and box[0] == int(box[0]) and box[1] == int(box[1]), box
    shown = np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB"))
    name = page.get_attribute(selector, "src").rsplit("/", 1)[-1]
    assert np.array_equal(shown, np.asarray(Image.open(study / "images" / name).convert("RGB"))), name


def test_a_rater_completes_both_modes_in_chromium(sync_api, study, tmp_path):
    trials = 4 + 1  # every pair once, the repeated pair twice
    [(token, rater)] = add_invites(study, 1).items()
    with study_server(study) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.clock.install()  # the presentation's timers advance only when the test says so
            page.goto(f"{url}/?invite={token}")
            page.click("#start-dsis")
            for i in range(trials):
                for phase in ("original", "changed"):
                    page.wait_for_selector(f"#trial[data-index='{i}'] #stage[data-phase={phase}]", timeout=10_000)
                    assert_native(page, "#single-img", study)
                    assert page.is_hidden("#vote")
                    page.clock.run_for(int((SHOW + GAP) * 1000))  # the photo, then mid-grey
                page.wait_for_selector("#stage[data-phase=vote]", timeout=10_000)
                if i == 0:
                    page.screenshot(path=str(tmp_path / "study-vote.png"))
                page.click(f"#vote button[data-score='{5 - i % 5}']")
            page.wait_for_selector("#done:not([hidden])", timeout=10_000)
            assert f"Your {trials} answers are stored" in page.inner_text("#done")

            page.goto(f"{url}/?invite={token}")
            page.click("#start-choice")
            shown = []
            for i in range(trials):
                page.wait_for_selector(f"#trial[data-index='{i}'] #stage[data-phase=choice]", timeout=10_000)
                shown.append({page.get_attribute(f"#{side}-img", "src").rsplit("/", 1)[-1] for side in ("left", "right")})
                if i == 0:
                    assert_native(page, "#left-img", study)
                    assert_native(page, "#right-img", study)
                    assert page.is_hidden("#too-small") and not page.eval_on_selector("#pair", "e => e.classList.contains('stacked')")
                    page.set_viewport_size({"width": 500, "height": 800})  # too narrow side by side: stacked
                    page.wait_for_selector("#pair.stacked", timeout=5_000)
                    assert page.is_hidden("#too-small")
                    page.set_viewport_size({"width": 300, "height": 800})  # narrower than one photo: says so
                    page.wait_for_selector("#too-small:not([hidden])", timeout=5_000)
                    assert "too small" in page.inner_text("#too-small")
                    page.screenshot(path=str(tmp_path / "study-too-small.png"))
                    page.set_viewport_size({"width": 1000, "height": 800})
                page.click("#pick-left")
            page.wait_for_selector("#done:not([hidden])", timeout=10_000)
            assert not errors, errors
        finally:
            browser.close()
    stored = RatingStore(study / RATINGS).all()
    assert len(stored) == 2 * trials and {r.rater for r in stored} == {rater}  # the id bound to the link
    dsis, choice = stored[:trials], stored[trials:]
    # each trial showed its own pair (never the previous one while the next loads), on a side chosen at random
    assert [{f"{r.pair}-o.png", f"{r.pair}-p.png"} for r in choice] == shown
    assert {r.mode for r in dsis} == {"dsis"} and [r.score for r in dsis] == [5, 4, 3, 2, 1]
    assert {r.mode for r in choice} == {"choice"} and {r.choice for r in choice} <= {"changed", "original"}
    pairs = [r.pair for r in dsis]
    assert len(set(pairs)) == 4 and all(r.seconds >= 2 * (SHOW + GAP) for r in dsis)  # both shown in full first
    # The repeated pair came twice, never back to back, so its scores (5, 4, 3, 2, 1 by position) differ by 2 or
    # more: the consistency check screens this rater out.
    first, second = [i for i, pair in enumerate(pairs) if pair == load_manifest(study).repeats[0]]
    assert second - first >= 2
    assert study_report(study).humans.screened == {rater: second - first}
