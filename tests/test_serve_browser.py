"""The web page at `/`, driven in Debian's Chromium by Playwright against a real `advpriv serve`.

Uploads a real CelebA face, waits for the protected photo, checks the metrics, the dlib verdict and the
download, then an error in plain words, then the impersonation fields; saves a screenshot under tmp_path (its path is printed).
Then what a person reads: each headline case (the server's answer stubbed with `report_json` of a made-up report, so
the verdict comes from the service's own code), the progress of a real protection against a slow toy classifier,
and that a new run or photo never leaves an old result on screen.
Skipped, with the reason, when playwright, /usr/bin/chromium or ../shared are missing (`make test` installs
chromium where apt-get works).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from conftest import CHROMIUM, shared_path
from PIL import Image
from serving import running_server

from advpriv.protect.files import FileReport
from advpriv.serve.app import report_json
from advpriv.serve.jobs import DEFAULTS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SLOW_TARGET = "slow=toy_models:slow_classifier"


@pytest.fixture(scope="module")
def server():
    """One service for the tests below: faces, and a toy classifier slow enough to watch."""
    with running_server("--timeout", "120", "--add-target", SLOW_TARGET) as url:
        yield url


@pytest.fixture(scope="module")
def browser(sync_api):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page of the service; fails the test on any script error in it."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/")
    page.wait_for_function("document.getElementById('version').textContent !== ''")
    yield page
    page.close()
    assert not errors, errors


def png_file(folder: Path, name: str = "photo.png", side: int = 96, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path = folder / name
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def face_photo() -> Path:
    folder = shared_path("data", "celeba-id")
    photos = sorted(folder.rglob("*.jpg"))
    if not photos:
        pytest.skip(f"no .jpg photos under {folder}")
    return photos[0]


def test_page_protects_a_face_and_explains_errors(browser, server, tmp_path):
    photo = face_photo()
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("these are notes, not a photo\n")
    screenshot = tmp_path / "serve-page.png"
    url = server

    page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    try:
        requests: list[str] = []
        page_errors: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.goto(f"{url}/")

        # Defaults: medium strength, protecting faces.
        assert page.is_checked("input[name=strength][value=medium]")
        assert page.input_value("#target") == "dlib"

        page.set_input_files("#image", str(photo))
        page.click("#protect")
        page.wait_for_selector("#progress:not([hidden])", timeout=5_000)
        page.wait_for_selector("#result[data-ready=true]", timeout=120_000)

        assert page.is_hidden("#error"), page.inner_text("#error")
        psnr = page.inner_text("dd[data-metric=psnr]")
        ssim = page.inner_text("dd[data-metric=ssim]")
        assert re.fullmatch(r"\d+\.\d\d dB|∞ dB \(unchanged\)", psnr), psnr
        assert re.fullmatch(r"[01]\.\d{4}", ssim) and float(ssim) > 0.9, ssim
        # The headline is one of the three cases, its colour that case's, and the tables agree with it.
        case = page.get_attribute("#verdict", "data-case")
        headline = {"all": "Protected from every judge, on every copy.",
                    "attacked": "Protected from the attacked models only.", "none": "Not protected."}[case]
        assert page.inner_text("#verdict") == headline
        assert page.get_attribute("#verdict", "class") == "verdict " + {"all": "ok", "attacked": "partial", "none": "warn"}[case]
        assert page.inner_text("#verdict-detail").startswith("1 face found.")
        assert page.get_attribute("#variants tr[data-variant=png] td[data-case]", "data-case") == case
        dlib_cell = page.inner_text("#faces td[data-judge=dlib]")
        assert re.match(r"(Still recognised|Not recognised)", dlib_cell), dlib_cell
        face_quality = page.inner_text("#faces td[data-quality]")  # face ΔE p99 / SSIM / eyes and lips CIEDE2000
        assert re.fullmatch(r"\d+\.\d\d / [01]\.\d{3} / \d+\.\d\d", face_quality), face_quality
        # The face is numbered on the preview of the photo, where it is.
        assert page.inner_text("#preview-boxes .face-box") == "1"
        assert page.inner_text("#faces tbody th") == "Face 1"
        assert "dlib" in page.inner_text("#ensemble")

        # The amplified difference was computed in the page: something changed, and only by a few levels.
        max_difference = int(page.get_attribute("#diff", "data-max-difference"))
        assert 0 < max_difference <= 64, max_difference

        # The download link gives a PNG with the server's file name.
        with page.expect_download() as download_info:
            page.click("#download")
        download = download_info.value
        assert download.suggested_filename == f"{photo.stem}.protected.png"
        assert Path(download.path()).read_bytes()[:8] == PNG_SIGNATURE

        # Nothing outside the server was asked for (no CDN, no fonts from elsewhere).
        origin = urlparse(url).netloc
        outside = [u for u in requests if not (u.startswith(("blob:", "data:")) or urlparse(u).netloc == origin)]
        assert not outside, outside

        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot: {screenshot}")

        # Narrow screens: no sideways scrolling.
        page.set_viewport_size({"width": 360, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth") <= 360

        # A text file named .jpg: the server's message, in plain words, not a crash or raw JSON.
        page.set_viewport_size({"width": 1100, "height": 900})
        page.set_input_files("#image", str(not_an_image))
        page.click("#protect")
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        message = page.inner_text("#error")
        assert message.startswith("notes.jpg") and "not a readable image" in message and "{" not in message, message
        assert page.is_hidden("#result")  # the other photo's result is gone
        assert page.is_enabled("#protect")
        page.screenshot(path=str(tmp_path / "serve-page-error.png"))

        # Impersonation: the identity's photos are asked for, checked, and sent as `as` with mode=impersonate
        # (the server's answer is stubbed here: the API's side is tested in test_serve_api.py).
        assert page.is_hidden("#as-field")
        page.check("input[name=mode][value=impersonate]")
        assert page.is_visible("#as-field")
        page.set_input_files("#image", str(photo))
        page.click("#protect")
        assert "at least one photo of the person" in page.inner_text("#error")
        sent: list[bytes] = []
        stub = json.dumps({"error": {"code": "no_face", "message": "the `as` photo b.jpg: no face found."}})
        page.route("**/v1/protect", lambda route: (sent.append(route.request.post_data_buffer),
                                                    route.fulfill(status=422, content_type="application/json",
                                                                  body=stub)))
        page.set_input_files("#as", [str(photo), str(photo)])
        page.click("#protect")
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert "as` photo b.jpg" in page.inner_text("#error")
        assert len(sent) == 1 and sent[0].count(b'name="as"') == 2 and b"impersonate" in sent[0]
        page.select_option("#target", "efficientnet-lite0")
        assert page.is_hidden("#mode-field")
        assert not page_errors, page_errors
    finally:
        page.close()


def answer(photo: Path, mode: str, success: bool, seen: list[dict[str, bool]]) -> str:
    """/v1/protect's JSON, made by the service's `report_json`, for one face of `photo` (box (20,20)-(60,60)) and
    each judge's `matches` on the file as written, after JPEG 85 and after the half-size resize (`seen`)."""
    def faces(judged: dict[str, bool]) -> list[dict]:
        verdicts = {j: {"detected": True, "distance": 0.3 if m else 0.8, "matches": m, "threshold": 0.6}
                    for j, m in judged.items()}
        return [{"box": [20, 20, 60, 60], "judges": verdicts,
                 "quality": {"psnr": 44.0, "ssim": 0.95, "vif": 0.9, "ciede2000": 1.25, "ciede2000_face": 0.8,
                             "ciede2000_p99": 1.9}}]

    variants = {name: {"success": all(m == (mode == "impersonate") for m in judged.values()), "summary": "",
                       "faces": faces(judged)} for name, judged in zip(("png", "jpeg85", "half"), seen)}
    report = FileReport(input=photo.name, success=success, before="1 face", metrics={"psnr": 44.0, "ssim": 0.99},
                        faces=variants["png"]["faces"], variants=variants)
    options = {**DEFAULTS, "mode": mode, "response": "json"}
    return json.dumps(report_json(report, options, ["dlib", "facenet"], photo.read_bytes(), "photo.protected.png"))


FOOLED, SEEN_BY_UNSEEN_JUDGE = {"dlib": False, "mobilefacenet": False}, {"dlib": False, "mobilefacenet": True}
HEADLINES = {  # case: (mode, attacked models' success, judges per copy, headline, colour, face cell, written copy)
    "all protected": ("dodge", True, [FOOLED] * 3, "Protected from every judge, on every copy.", "ok",
                      ("mobilefacenet", "Not recognised", "ok"), ("Yes, from every judge", "ok")),
    "attacked models only": ("dodge", True, [SEEN_BY_UNSEEN_JUDGE, SEEN_BY_UNSEEN_JUDGE, FOOLED],
                             "Protected from the attacked models only.", "partial",
                             ("mobilefacenet", "Still recognised", "warn"), ("From the attacked models only", "partial")),
    "not protected": ("dodge", False, [{"dlib": True, "mobilefacenet": True}] * 3, "Not protected.", "warn",
                      ("dlib", "Still recognised", "warn"), ("No", "warn")),
    "impersonation reached": ("impersonate", True, [{"dlib": True, "mobilefacenet": True}] * 3,
                              "Recognised as the target by every judge, on every copy.", "ok",
                              ("dlib", "Matches the target", "ok"), ("Yes, by every judge", "ok")),
    "impersonation failed": ("impersonate", False, [{"dlib": False}] * 3, "Not recognised as the target.", "warn",
                             ("dlib", "Does not match the target", "warn"), ("No", "warn")),
}


@pytest.mark.parametrize("case", HEADLINES)
def test_headline_colour_and_tables_say_the_same(page, tmp_path, case):
    mode, success, seen, headline, colour, (judge, cell, cell_colour), (written, written_colour) = HEADLINES[case]
    photo = png_file(tmp_path)
    body = answer(photo, mode, success, seen)
    page.route("**/v1/protect", lambda route: route.fulfill(status=200, content_type="application/json", body=body))
    page.set_input_files("#image", str(photo))
    if mode == "impersonate":
        page.check("input[name=mode][value=impersonate]")
        page.set_input_files("#as", str(photo))
    page.click("#protect")
    page.wait_for_selector("#result[data-ready=true]")

    assert page.inner_text("#verdict") == headline
    assert page.get_attribute("#verdict", "class") == f"verdict {colour}"
    face = page.locator(f"#faces td[data-judge={judge}]")
    assert face.inner_text().startswith(cell) and face.get_attribute("class") == cell_colour
    written_row = page.locator("#variants tr[data-variant=png] td[data-case]")
    assert written_row.inner_text() == written and written_row.get_attribute("class") == written_colour
    detail = page.inner_text("#verdict-detail")
    if mode == "impersonate":
        assert page.inner_text("#variants thead").count("matching the target") == len(seen[0])
        assert "recognised" not in page.inner_text("#faces tbody") + detail
    if case == "attacked models only":  # the judges that still recognise are named, with the copies
        assert detail == ("1 face found. Faces still recognised: mobilefacenet 1/1 as written (png), "
                          "1/1 after JPEG quality 85.")
        assert "mobilefacenet (never attacked)" in page.inner_text("#faces thead")
        half = page.locator("#variants tr[data-variant=half] td[data-case]")
        assert half.inner_text() == "Yes, from every judge" and half.get_attribute("class") == "ok"
    assert page.inner_text("#preview-boxes .face-box") == "1"


def test_progress_is_shown_and_a_new_run_or_photo_clears_the_old_result(page, server, tmp_path):
    first, second = png_file(tmp_path, "first.png", seed=1), png_file(tmp_path, "second.png", seed=2)
    page.select_option("#target", "slow")
    page.check("input[name=strength][value=low]")
    page.set_input_files("#image", str(first))
    page.click("#protect")
    # The worker's stage, step and time left, streamed while it works (about 0.1 s per step).
    page.wait_for_function("/Protecting: step \\d+ of 50, about \\d+ s left at most \\(\\d+ s so far\\)/"
                           ".test(document.getElementById('progress-text').textContent)", timeout=60_000)
    assert page.get_attribute("#progress-bar", "max") == "50"
    page.wait_for_selector("#result[data-ready=true]", timeout=60_000)
    assert page.is_hidden("#progress")
    assert page.inner_text("#verdict") in {"Protected: the classifier is fooled on every copy.",
                                           "Protected on the file as written only.",
                                           "Not protected: the classifier is not fooled by the file as written."}

    # A second run: the first result leaves the screen at once; the wait is told from this server's last job.
    page.click("#protect")
    assert page.is_hidden("#result") and page.inner_text("#verdict") == ""
    page.wait_for_function("/The last (photo|\\d+ photos) on this server took /"
                           ".test(document.getElementById('progress-recent').textContent)", timeout=60_000)
    page.wait_for_selector("#result[data-ready=true]", timeout=60_000)

    # Choosing another photo clears the result too, and an error never stands above an old result.
    page.set_input_files("#image", str(second))
    assert page.is_hidden("#result")
    assert page.get_attribute("#preview-img", "src").startswith("blob:") and page.is_visible("#preview")
    page.route("**/v1/protect", lambda route: route.fulfill(
        status=422, content_type="application/json",
        body=json.dumps({"error": {"code": "no_face", "message": "second.png: no face found."}})))
    page.click("#protect")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == "second.png: no face found." and page.is_hidden("#result")
