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


def brighter_study(tmp_path: Path, width: int = WIDTH, height: int = HEIGHT, references: int = 1) -> Path:
    """Two width×height originals, one method (brighter by 2 levels), `references` identical and noisy
    references each, and as many repeats."""
    rng = np.random.default_rng(1)
    originals, method = tmp_path / "originals", tmp_path / "brighter"
    originals.mkdir()
    method.mkdir()
    for stem in ("x", "y"):
        pixels = rng.integers(20, 230, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(originals / f"{stem}.png")
        Image.fromarray(pixels + 2).save(method / f"{stem}.protected.png")
    folder = tmp_path / "study"
    make_study(originals, {"brighter": method}, folder, identical=references, noisy=references, repeats=references,
               show_seconds=SHOW, gap_seconds=GAP)
    return folder


@pytest.fixture
def study(tmp_path) -> Path:
    """Two originals, one method (brighter by 2 levels), one identical and one noisy reference, one repeat."""
    return brighter_study(tmp_path)


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


LAPTOP = {"width": 1366, "height": 768}


def inside_viewport(page, selector: str) -> bool:
    """Whether every element matching `selector` is shown whole inside the window, without scrolling."""
    return page.eval_on_selector_all(selector, """(elements) => elements.length > 0 && elements.every((e) => {
        const r = e.getBoundingClientRect();
        return e.offsetParent && r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight; })""")


def border(page, selector: str) -> str:
    return page.eval_on_selector(selector, "e => getComputedStyle(e).borderTopColor")


def opened(browser, url: str, token: str):
    page = browser.new_page(viewport=LAPTOP)
    page.clock.install()  # the presentation's timers advance only when the test says so
    page.goto(f"{url}/?invite={token}")
    return page


def score_pairs(page, trials: int) -> None:
    """Go through `trials` impairment trials, checking each time that the score buttons are on screen."""
    for i in range(trials):
        page.wait_for_selector(f"#trial[data-index='{i}'] #stage[data-phase=original]", timeout=10_000)
        page.clock.run_for(int(2 * (SHOW + GAP) * 1000))
        page.wait_for_selector("#stage[data-phase=vote]", timeout=10_000)
        assert inside_viewport(page, "#vote .scores button"), f"trial {i}: a score button is outside the window"
        page.click("#vote button[data-score='4']")


def test_at_1366x768_a_photo_that_fits_is_shown_whole_and_the_parts_follow_each_other(sync_api, tmp_path):
    study = brighter_study(tmp_path, 640, 680, references=0)  # 680 + 72 pixels around it: fits in 768
    [(token, _)] = add_invites(study, 1).items()
    with study_server(study) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = opened(browser, url, token)
            page.wait_for_function("document.querySelector('#too-small').textContent !== ''")  # checked, and fits
            assert page.is_hidden("#too-small") and "Please do both parts" in page.inner_text("#intro")
            page.click("#start-dsis")
            page.wait_for_selector("#stage[data-phase=original]", timeout=10_000)
            assert page.is_hidden("header") and inside_viewport(page, "#single-img")
            score_pairs(page, 2)
            page.wait_for_selector("#done:not([hidden])", timeout=10_000)
            assert "go on to the other part" in page.inner_text("#done-text")
            page.click("#next-part")  # part 2 from the same page

            page.wait_for_selector("#trial[data-index='0'] #stage[data-phase=choice]", timeout=10_000)
            page.hover("#pick-left")  # where the pointer rests when a pair appears: no side may look chosen
            assert border(page, "#pick-left") == border(page, "#pick-right") == "rgba(0, 0, 0, 0)"
            page.click("#pick-left")
            page.wait_for_selector("#trial[data-index='1'] #stage[data-phase=choice]", timeout=10_000)
            assert page.evaluate("document.activeElement.className") != "pick"  # the last pick is not marked
            assert border(page, "#pick-left") == border(page, "#pick-right") == "rgba(0, 0, 0, 0)"
            page.keyboard.press("Tab")  # a keyboard user sees where the focus is
            focused = "#" + page.evaluate("document.activeElement.id")
            assert focused in ("#pick-left", "#pick-right") and border(page, focused) != "rgba(0, 0, 0, 0)"
            page.click("#pick-right")
            page.wait_for_selector("#done:not([hidden])", timeout=10_000)
            assert "done both parts" in page.inner_text("#done-text") and page.is_hidden("#next-part")
            page.screenshot(path=str(tmp_path / "study-done.png"))
        finally:
            browser.close()
    assert [r.mode for r in RatingStore(study / RATINGS).all()] == ["dsis", "dsis", "choice", "choice"]


def test_at_1366x768_a_tall_photo_is_flagged_before_starting_and_the_scores_stay_on_screen(sync_api, tmp_path):
    study = brighter_study(tmp_path, 623, 934, references=0)
    [(token, _)] = add_invites(study, 1).items()
    with study_server(study) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = opened(browser, url, token)
            page.wait_for_selector("#too-small:not([hidden])", timeout=10_000)  # on the start page, before starting
            assert "shows 1366×768 screen pixels, and the photos need 663×1006" in page.inner_text("#too-small")
            assert inside_viewport(page, "#too-small")
            page.set_viewport_size({"width": 1366, "height": 1100})  # enlarged: the note goes
            page.wait_for_selector("#too-small", state="hidden", timeout=5_000)
            page.set_viewport_size(LAPTOP)
            page.wait_for_selector("#too-small:not([hidden])", timeout=5_000)
            page.click("#start-dsis")
            score_pairs(page, 2)
            page.wait_for_selector("#done:not([hidden])", timeout=10_000)
        finally:
            browser.close()
    assert [r.score for r in RatingStore(study / RATINGS).all()] == [4, 4]
