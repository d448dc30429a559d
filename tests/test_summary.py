"""What `advpriv protect` prints at the end, as a person reads it: the verdict in words and colour per case, which
models were tested, and a table with no cell cut at 80 columns."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from advpriv.protect.files import FileReport
from advpriv.summary import print_summary

COPIES = ("png", "jpeg85", "half")


def _report(name: str, success: bool, matches: dict[str, tuple[bool, bool, bool]]) -> FileReport:
    """One face, judged per copy: `matches[judge]` says whether the judge matches it on png, jpeg85, half."""
    variants = {}
    for k, copy in enumerate(COPIES):
        face = {"box": [0, 0, 9, 9], "judges": {j: {"detected": True, "distance": 0.5, "matches": m[k], "threshold": 0.6}
                                                for j, m in matches.items()}}
        variants[copy] = {"success": not any(m[k] for m in matches.values()), "summary": "", "faces": [face]}
    faces = [dict(variants["png"]["faces"][0], quality={"ssim": 0.9412, "ciede2000": 1.84, "ciede2000_p99": 2.71})]
    return FileReport(input=f"/photos/{name}", success=success, seconds=12.3, faces=faces, variants=variants)


def _printed(reports: list[FileReport], attacked: list[str], impersonate: bool = False, width: int = 80) -> str:
    out = Console(file=io.StringIO(), width=width, force_terminal=True, color_system="standard")
    print_summary(reports, attacked, impersonate, out)
    return out.file.getvalue()


def _plain(text: str) -> str:
    """The text without its colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


NO, YES = (False, False, False), (True, True, True)
CASES = [  # (attacked, matches, success, impersonate, headline, colour code of the verdict line)
    (["dlib"], {"dlib": NO}, True, False, "Protected from every judge, on every copy.", "32"),
    (["dlib"], {"dlib": NO, "mobilefacenet": YES}, True, False, "Protected from the attacked models only.", "33"),
    (["dlib"], {"dlib": YES}, False, False, "Not protected.", "31"),
    (["dlib"], {"dlib": YES}, True, True, "Recognised as the target by every judge, on every copy.", "32"),
    (["dlib"], {"dlib": NO}, False, True, "Not recognised as the target.", "31"),
]


@pytest.mark.parametrize("attacked, matches, success, impersonate, headline, colour", CASES)
def test_each_case_has_its_words_and_colour(attacked, matches, success, impersonate, headline, colour) -> None:
    printed = _printed([_report("000565.jpg", success, matches)], attacked, impersonate)
    line = next(line for line in printed.splitlines() if "000565.jpg (12.3 s):" in line)
    assert f"\x1b[{colour}m" in line and headline in _plain(printed).replace("\n", " ")
    title = "Faces matching the target" if impersonate else "Faces still recognised"
    assert title in printed


def test_the_attacked_models_only_case_names_who_still_recognises() -> None:
    text = " ".join(_plain(_printed([_report("a.jpg", True, {"dlib": NO, "mobilefacenet": YES})], ["dlib"])).split())
    assert "Faces still recognised: mobilefacenet 1/1 as written (png), 1/1 after JPEG quality 85" in text
    assert "Attacked dlib; also judged by mobilefacenet, which the protection never saw." in text


def test_a_default_run_says_that_only_the_attacked_models_were_tested() -> None:
    text = " ".join(_plain(_printed([_report("a.jpg", True, {"dlib": NO})], ["dlib", "facenet"])).split())
    assert ("Tested against dlib and facenet only, the models it attacked: not against other face models (add some: "
            "advpriv models add / fetch") in text


def test_the_table_fits_80_columns_with_every_cell_whole() -> None:
    reports = [_report("IMG_0001.jpg", True, {"dlib": NO, "mobilefacenet": (True, False, True)}),
               _report("b.jpg", False, {"dlib": YES, "mobilefacenet": YES})]
    text = _plain(_printed(reports, ["dlib"]))
    table = text[:text.index("written: the file as written (png); jpeg85: after JPEG quality 85")].splitlines()
    assert max(map(len, table)) <= 80
    assert table[1].split() == ["file", "judge", "written", "jpeg85", "half", "ΔE", "face", "ΔE", "eyes"]
    cells = [line.split() for line in table[3:] if line.strip()]
    assert cells == [["IMG_0001.jpg", "dlib", "0/1", "0/1", "0/1", "2.7", "1.8"],
                     ["mobilefacenet", "1/1", "0/1", "1/1"],
                     ["b.jpg", "dlib", "1/1", "1/1", "1/1", "2.7", "1.8"],
                     ["mobilefacenet", "1/1", "1/1", "1/1"]]


def test_a_narrow_terminal_drops_columns_and_says_which() -> None:
    text = _plain(_printed([_report("000565.jpg", True, {"dlib": NO, "mobilefacenet": YES})], ["dlib"], width=50))
    table = text[:text.index("written: the file")].splitlines()
    assert max(map(len, table)) <= 50 and "ΔE" not in table[1] and "mobilefacenet" in text
    assert "Left out to fit 50 columns: ΔE eyes" in " ".join(text.split())
    long = _plain(_printed([_report("IMG_20240601_123456_HDR.jpg", True, {"dlib": NO})], ["dlib"], width=50))
    lines = long[:long.index("written: the file")].splitlines()[3:]
    assert max(map(len, lines)) <= 50 and "".join(line.split()[0] for line in lines) .startswith("IMG_20240601_123456_HDR.jpg")


def test_many_files_are_counted_per_verdict() -> None:
    reports = [_report(f"p{k}.jpg", True, {"dlib": NO}) for k in range(6)] + [_report("bad.jpg", False, {"dlib": YES})]
    text = " ".join(_plain(_printed(reports, ["dlib"])).split())
    assert "Protected from every judge, on every copy. 6 of 7 files: p0.jpg, p1.jpg, p2.jpg, …" in text
    assert "Not protected. 1 of 7 files: bad.jpg" in text and "(12.3 s)" not in text
