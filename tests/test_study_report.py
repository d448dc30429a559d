"""`advpriv study report`: MOS, intervals, detection rates and screening on a hand-made set of ratings.

The expected numbers were worked out by hand (Student-t quantiles from a table) and are written as literals.
"""

from __future__ import annotations

import pytest
from PIL import Image
from typer.testing import CliRunner

from advpriv.cli import app
from advpriv.study.manifest import IDENTICAL, NOISE, Manifest, Pair, save_manifest
from advpriv.study.report import format_report, study_report
from advpriv.study.store import RATINGS, Rating, RatingStore

PAIRS = [Pair("p01", "mnd", "a.png", "a.protected.png", 41.0), Pair("p02", "mnd", "b.png", "b.protected.png", 40.0),
         Pair("p03", NOISE, "a.png", NOISE, 30.0), Pair("p04", IDENTICAL, "b.png", IDENTICAL)]


def dsis(rater: str, pair: str, method: str, score: int) -> Rating:
    return Rating(rater, pair, method, "dsis", score, None, 3.0)


def choice(rater: str, pair: str, method: str, picked: str) -> Rating:
    return Rating(rater, pair, method, "choice", None, picked, 2.0)


HAND_MADE = [
    # rater a: repeated p01 scored 5 and 5 (difference 0): kept
    dsis("a", "p01", "mnd", 5), dsis("a", "p02", "mnd", 4), dsis("a", "p03", NOISE, 1), dsis("a", "p01", "mnd", 5),
    # rater b: repeated p01 scored 4 and 3 (difference 1, not above 1): kept
    dsis("b", "p01", "mnd", 4), dsis("b", "p02", "mnd", 4), dsis("b", "p03", NOISE, 2), dsis("b", "p01", "mnd", 3),
    # rater c: repeated p01 scored 5 and 2 (difference 3): screened out with all their ratings
    dsis("c", "p01", "mnd", 5), dsis("c", "p01", "mnd", 2), choice("c", "p02", "mnd", "changed"),
    # rater d, forced choice: mnd found 2 of 4 times, the noisy reference 2 of 2
    choice("d", "p01", "mnd", "changed"), choice("d", "p02", "mnd", "original"),
    choice("d", "p01", "mnd", "changed"), choice("d", "p02", "mnd", "original"),
    choice("d", "p03", NOISE, "changed"), choice("d", "p03", NOISE, "changed"),
    # a machine rater: never mixed into the human results
    dsis("agent-pipeline-check", "p04", IDENTICAL, 5), dsis("agent-pipeline-check", "p01", "mnd", 1),
]


@pytest.fixture
def study(tmp_path):
    for pair in PAIRS:
        for name in (pair.original_file, pair.changed_file):
            (tmp_path / name).parent.mkdir(exist_ok=True)
            Image.new("RGB", (8, 8)).save(tmp_path / name)
    save_manifest(Manifest(PAIRS, repeats=["p01"]), tmp_path)
    return tmp_path


def test_report_numbers_on_hand_made_ratings(study):
    store = RatingStore(study / RATINGS)
    for rating in HAND_MADE:
        store.add(rating)
    report = study_report(study)
    assert report.total == len(HAND_MADE) == 19
    humans = report.humans
    assert humans.raters == ["a", "b", "c", "d"]
    assert humans.screened == {"c": 3.0}
    assert humans.ratings == 19 - 3 - 2  # c's three and the agent's two left out
    mnd, noise = humans.methods
    assert (mnd.method, noise.method) == ("mnd", NOISE)

    # mnd scores of a and b: 5, 4, 5, 4, 4, 3 -> mean 25/6; s² = (17/6)/5 = 17/30; t(0.975, 5) = 2.5706;
    # half width 2.5706 * sqrt(17/30) / sqrt(6) = 0.78999.
    assert mnd.scores == 6
    assert mnd.mos == pytest.approx(25 / 6)
    assert (mnd.mos_low, mnd.mos_high) == pytest.approx((25 / 6 - 0.78999, 25 / 6 + 0.78999), abs=1e-4)
    # noise scores 1, 2 -> mean 1.5, s = 0.70711, t(0.975, 1) = 12.7062: half width 12.7062 * 0.70711 / sqrt(2) = 6.3531,
    # i.e. [-4.85, 7.85], clipped to the scale's ends
    assert noise.scores == 2
    assert (noise.mos, noise.mos_low, noise.mos_high) == pytest.approx((1.5, 1, 5), abs=1e-4)

    # Wilson, z = 1.96: 2 of 4 -> centre 0.5, half 0.98 * sqrt(0.0625 + 0.0600) = 0.34996 -> [0.15004, 0.84996]
    assert (mnd.choices, mnd.detected, mnd.rate) == (4, 2, 0.5)
    assert (mnd.rate_low, mnd.rate_high) == pytest.approx((0.15004, 0.84996), abs=1e-4)
    # 2 of 2 -> centre 1.96037 / 2.92073 = 0.67119, half 0.67106 * 0.48999 = 0.32881 -> [0.34238, 1]
    assert (noise.choices, noise.detected, noise.rate) == (2, 2, 1.0)
    assert (noise.rate_low, noise.rate_high) == pytest.approx((0.34238, 1.0), abs=1e-4)

    agents = report.agents
    assert agents.raters == ["agent-pipeline-check"] and agents.ratings == 2
    assert [(m.method, m.mos) for m in agents.methods] == [("mnd", 1.0), (IDENTICAL, 5.0)]
    assert agents.methods[0].mos_low is None  # one score: no interval

    text = format_report(report)
    assert "19 rating(s) stored" in text and "screened out: c" in text
    assert "4.17 [3.38, 4.96]" in text and "2/4 = 50% [15%, 85%]" in text
    assert "Machine raters (pipeline checks, NOT human opinion)" in text


def test_report_without_human_raters_says_so_and_charts_the_pipeline_check(study):
    result = CliRunner().invoke(app, ["study", "report", str(study)])
    assert result.exit_code == 0, result.output
    assert "0 rating(s) stored" in result.output and "Human raters: none yet" in result.output
    assert "no chart" in result.output and not (study / "report.png").exists()

    RatingStore(study / RATINGS).add(dsis("agent-pipeline-check", "p04", IDENTICAL, 5))
    result = CliRunner().invoke(app, ["study", "report", str(study)])
    assert result.exit_code == 0, result.output
    assert "Human raters: none yet" in result.output and "NOT human opinion" in result.output
    assert (study / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_report_on_a_folder_that_is_no_study(tmp_path):
    result = CliRunner().invoke(app, ["study", "report", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a study folder" in result.output and "advpriv study make" in result.output


def test_chart_shows_the_scale_intervals_inside_it_chance_and_zero(tmp_path):
    """What a reader of report.png sees: the 1-5 scale, intervals inside the axes, no interval for one rating,
    the chance line named, and a 0 % rate drawn."""
    from matplotlib.collections import LineCollection

    from advpriv.study.report import GroupReport, MethodResult, report_figure, write_chart

    methods = [MethodResult("mnd", scores=6, mos=4.9, mos_low=4.3, mos_high=5.0, choices=4, detected=0, rate=0.0,
                            rate_low=0.0, rate_high=0.49),
               MethodResult(NOISE, scores=1, mos=1.0, choices=2, detected=2, rate=1.0, rate_low=0.34, rate_high=1.0)]
    group = GroupReport(["a", "b"], {}, 13, methods)
    mos, rate = report_figure(group, "Human raters").axes
    assert mos.get_ylim()[0] > 0.5 and "1 very annoying" in [t.get_text() for t in mos.get_yticklabels()]
    for axis, drawn in ((mos, 1), (rate, 2)):  # the one-rating MOS gets no interval, not a zero-width one
        bars = [seg for c in axis.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
        assert len(bars) == drawn
        low, high = axis.get_ylim()
        assert all(low < y < high for seg in bars for _, y in seg)
    assert "1.00\nno interval\n(one rating)" in [t.get_text() for t in mos.texts]
    assert any("chance" in t.get_text() for t in rate.texts) and "0%" in [t.get_text() for t in rate.texts]
    zero = [line for line in rate.get_lines() if list(line.get_ydata()) == [0.0]]
    assert zero and rate.get_ylim()[0] < 0  # the 0 % dot sits inside the axes, not on their edge
    path = write_chart(group, tmp_path / "report.png", "Human raters")
    with Image.open(path) as im:
        assert im.format == "PNG"
