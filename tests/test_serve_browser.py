"""The web page at `/`, driven in Debian's Chromium by Playwright against a real `advpriv serve`.

Uploads a real CelebA face, waits for the protected photo, checks the metrics, the dlib verdict and the
download, then an error in plain words, then the impersonation fields; saves a screenshot under tmp_path (its path is printed).
Skipped, with the reason, when playwright, /usr/bin/chromium or ../shared are missing (`make test` installs
chromium where apt-get works).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import CHROMIUM, shared_path
from serving import running_server

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def face_photo() -> Path:
    folder = shared_path("data", "celeba-id")
    photos = sorted(folder.rglob("*.jpg"))
    if not photos:
        pytest.skip(f"no .jpg photos under {folder}")
    return photos[0]


def test_page_protects_a_face_and_explains_errors(sync_api, tmp_path):
    photo = face_photo()
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("these are notes, not a photo\n")
    screenshot = tmp_path / "serve-page.png"

    with running_server("--timeout", "120") as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
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
            verdict = page.inner_text("#verdict")
            assert "dlib:" in verdict and "recognised" in verdict, verdict
            dlib_cell = page.inner_text("#faces td[data-judge=dlib]")
            assert re.match(r"(Still recognised|Not recognised)", dlib_cell), dlib_cell
            face_quality = page.inner_text("#faces td[data-quality]")
            assert re.fullmatch(r"(\d+\.\d\d|∞) dB / [01]\.\d{4}", face_quality), face_quality

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
            browser.close()
