"""`advpriv study report`: MOS and detection rate per method, with 95 % intervals, from the stored ratings.

- MOS: mean of the impairment scores (5 imperceptible .. 1 very annoying) with a Student-t 95 % interval over the
  individual ratings (as ITU-R BT.500 computes it; it treats a rater's ratings as independent), clipped to the
  1–5 scale (a few ratings give a t-interval wider than the scale).
- Detection rate: share of forced choices that picked the changed image, with a Wilson 95 % interval; 50 % is
  chance, i.e. the change cannot be seen.
- Consistency check: every rater sees some pairs twice; a rater whose mean |score difference| over the repeated
  pairs exceeds 1 is screened out (all their ratings are left out). Raters with no repeated score are kept.
- Raters whose id starts with `agent-` are machine raters (pipeline checks); they are reported on their own and
  never mixed into the human results.
- Raters dropped by the study's organiser (`advpriv study report --drop`, see `advpriv.study.invites`) are left
  out entirely; their ratings stay stored.

Example:
    >>> mean_interval([4, 5, 5, 4])
    (4.5, 3.581..., 5.418...)
    >>> mean_interval([1, 2], scale=SCALE)
    (1.5, 1, 5)
    >>> tuple(round(v, 3) for v in wilson(8, 10))
    (0.8, 0.49, 0.943)
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from scipy.stats import t as student_t

from advpriv.images import atomic_write

from .invites import Invites
from .manifest import IDENTICAL, NOISE, load_manifest
from .store import RATINGS, Rating, RatingStore

AGENT_PREFIX = "agent-"
SCALE = (1, 5)
"""The impairment scale's ends."""
MAX_REPEAT_DIFFERENCE = 1.0
Z95 = 1.959963984540054


def mean_interval(values: list[float], scale: tuple[float, float] = (-math.inf, math.inf)
                  ) -> tuple[float, float | None, float | None]:
    """Mean and its two-sided 95 % Student-t interval, clipped to `scale` (None with fewer than two values)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(student_t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, max(scale[0], mean - half), min(scale[1], mean + half)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """Share of successes and its Wilson score interval."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p, centre - half, centre + half


def repeat_differences(ratings: list[Rating]) -> dict[str, float]:
    """Each rater's mean |score difference| over the pairs they scored more than once (max − min per pair)."""
    scores: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in ratings:
        if r.mode == "dsis":
            scores[r.rater, r.pair].append(r.score)
    spreads: dict[str, list[int]] = defaultdict(list)
    for (rater, _), values in scores.items():
        if len(values) > 1:
            spreads[rater].append(max(values) - min(values))
    return {rater: sum(v) / len(v) for rater, v in spreads.items()}


@dataclass(frozen=True)
class MethodResult:
    method: str
    scores: int
    mos: float | None = None
    mos_low: float | None = None
    mos_high: float | None = None
    choices: int = 0
    detected: int = 0
    rate: float | None = None
    rate_low: float | None = None
    rate_high: float | None = None


@dataclass(frozen=True)
class GroupReport:
    """The results of one group of raters (humans, or machine pipeline checks)."""

    raters: list[str]
    screened: dict[str, float]
    ratings: int
    methods: list[MethodResult]


def method_result(method: str, ratings: list[Rating]) -> MethodResult:
    scores = [r.score for r in ratings if r.mode == "dsis"]
    choices = [r.choice for r in ratings if r.mode == "choice"]
    mos = mean_interval(scores, SCALE) if scores else (None, None, None)
    detected = choices.count("changed")
    rate = wilson(detected, len(choices)) if choices else (None, None, None)
    return MethodResult(method, len(scores), *mos, len(choices), detected, *rate)


def group_report(ratings: list[Rating], methods: list[str]) -> GroupReport:
    differences = repeat_differences(ratings)
    screened = {rater: d for rater, d in differences.items() if d > MAX_REPEAT_DIFFERENCE}
    kept = [r for r in ratings if r.rater not in screened]
    by_method: dict[str, list[Rating]] = defaultdict(list)
    for r in kept:
        by_method[r.method].append(r)
    names = [m for m in methods if m in by_method] + sorted(set(by_method) - set(methods))
    return GroupReport(sorted({r.rater for r in ratings}), screened, len(kept),
                       [method_result(m, by_method[m]) for m in names])


@dataclass(frozen=True)
class StudyReport:
    total: int
    humans: GroupReport
    agents: GroupReport
    dropped: dict[str, int]
    """Raters left out by the organiser, with their stored ratings."""
    answers: dict[str, list[Rating]]
    """Every rater's ratings, dropped raters included (for `format_raters`)."""

    def all_raters(self) -> list[str]:
        return sorted(self.answers)


def study_report(folder: Path) -> StudyReport:
    """The report of a study folder; ratings of raters named `agent-...` go to `agents`, those of dropped raters
    nowhere."""
    methods = load_manifest(folder).methods()
    dropped = Invites.load(folder).dropped
    path = Path(folder) / RATINGS
    ratings = RatingStore(path).all() if path.is_file() else []
    answers: dict[str, list[Rating]] = defaultdict(list)
    for r in ratings:
        answers[r.rater].append(r)
    counted = [r for r in ratings if r.rater not in dropped]
    humans = [r for r in counted if not r.rater.startswith(AGENT_PREFIX)]
    agents = [r for r in counted if r.rater.startswith(AGENT_PREFIX)]
    return StudyReport(len(ratings), group_report(humans, methods), group_report(agents, methods),
                       {rater: len(answers.get(rater, [])) for rater in sorted(dropped)}, dict(answers))


def format_raters(report: StudyReport) -> str:
    """One line per rater: answers per mode, mean |score difference| on repeated pairs, and whether counted."""
    differences = repeat_differences([r for rs in report.answers.values() for r in rs])
    lines = [f"  {'rater':<24} {'scores':>6} {'choices':>7} {'repeat diff':>11}  status"]
    for rater in report.all_raters():
        answers = report.answers[rater]
        status = ("dropped" if rater in report.dropped else
                  "screened out" if rater in {**report.humans.screened, **report.agents.screened} else
                  "machine" if rater.startswith(AGENT_PREFIX) else "kept")
        difference = f"{differences[rater]:.2f}" if rater in differences else "-"
        lines.append(f"  {rater:<24} {sum(r.mode == 'dsis' for r in answers):>6} "
                     f"{sum(r.mode == 'choice' for r in answers):>7} {difference:>11}  {status}")
    return "\n".join([f"Raters ({len(report.answers)}):"] + lines)


LABELS = {IDENTICAL: "hidden ref: identical", NOISE: "hidden ref: noise"}


def format_group(title: str, group: GroupReport) -> str:
    """A plain-text table of one group."""
    lines = [f"{title}: {len(group.raters)} rater(s), {group.ratings} rating(s) kept"]
    for rater, difference in sorted(group.screened.items()):
        lines.append(f"  screened out: {rater} (mean |score difference| on repeated pairs {difference:.2f} > "
                     f"{MAX_REPEAT_DIFFERENCE:g})")
    lines.append(f"  {'method':<24} {'scores':>6}  {'MOS [95% CI]':<22} {'choices':>7}  detection rate [95% CI]")
    for m in group.methods:
        mos = "-" if m.mos is None else f"{m.mos:.2f}" + ("" if m.mos_low is None else
                                                            f" [{m.mos_low:.2f}, {m.mos_high:.2f}]")
        rate = "-" if m.rate is None else f"{m.detected}/{m.choices} = {m.rate:.0%} [{m.rate_low:.0%}, {m.rate_high:.0%}]"
        lines.append(f"  {LABELS.get(m.method, m.method):<24} {m.scores:>6}  {mos:<22} {m.choices:>7}  {rate}")
    return "\n".join(lines)


def format_report(report: StudyReport) -> str:
    parts = [f"{report.total} rating(s) stored."]
    if report.dropped:
        parts.append("Dropped by the organiser (left out): " +
                     ", ".join(f"{rater} ({n} rating(s))" for rater, n in report.dropped.items()))
    if report.humans.raters:
        parts.append(format_group("Human raters", report.humans))
    else:
        parts.append("Human raters: none yet. There is no human MOS or detection rate in this study.")
    if report.agents.raters:
        parts.append(format_group("Machine raters (pipeline checks, NOT human opinion)", report.agents))
    parts.append("MOS: 5 imperceptible .. 1 very annoying; 95 % t-interval over individual ratings. "
                 "Detection: share of forced choices that found the changed image (50 % = chance); Wilson interval.")
    return "\n\n".join(parts)


SCORE_NAMES = {5: "5 imperceptible", 4: "4 perceptible", 3: "3 slightly annoying", 2: "2 annoying",
               1: "1 very annoying"}
CHANCE = 0.5


def _panel(axis: Axes, group: GroupReport, value: str, count: str, unit: str) -> None:
    """One dot per method at its `value`, with its 95 % interval where there is one, and the value written beside."""
    shown = [m for m in group.methods if getattr(m, value) is not None]
    for x, m in enumerate(shown):
        v, low, high = getattr(m, value), getattr(m, f"{value}_low"), getattr(m, f"{value}_high")
        if low is None:  # one rating: no interval, rather than a bar of zero width
            axis.plot(x, v, "o", color="#4c78a8", markerfacecolor="white")
            text = f"{v:{unit}}\nno interval\n(one rating)"
        else:
            axis.errorbar(x, v, yerr=[[v - low], [high - v]], fmt="o", color="#4c78a8", capsize=5)
            text = f"{v:{unit}}"
        axis.annotate(text, (x, v), xytext=(8, 0), textcoords="offset points", va="center", fontsize=8)
    axis.set_xticks(range(len(shown)), [f"{LABELS.get(m.method, m.method)}\n(n={getattr(m, count)})" for m in shown],
                    fontsize=8)
    axis.set_xlim(-0.5, len(shown) - 0.3)
    axis.grid(axis="y", alpha=0.3)


def report_figure(group: GroupReport, title: str) -> Figure:
    """Left: MOS on the 1–5 scale; right: forced-choice detection rate with the 50 % chance line; each with its
    95 % interval per method.

    Example:
        >>> one = MethodResult("mnd", scores=1, mos=4.0, choices=2, detected=0, rate=0.0, rate_low=0.0, rate_high=0.66)
        >>> [ax.get_ylabel() for ax in report_figure(GroupReport(["a"], {}, 3, [one]), "t").axes]
        ['MOS (95 % interval)', 'changed photo found (95 % interval)']
    """
    fig = Figure(figsize=(max(8.0, 3.2 * len(group.methods)), 4.8), layout="constrained")
    mos, rate = fig.subplots(1, 2)
    _panel(mos, group, "mos", "scores", ".2f")
    mos.set_ylim(SCALE[0] - 0.25, SCALE[1] + 0.25)  # the scale's ends, with room for the caps
    mos.set_yticks(list(SCORE_NAMES), list(SCORE_NAMES.values()), fontsize=8)
    mos.set(ylabel="MOS (95 % interval)", title="Impairment scores")
    _panel(rate, group, "rate", "choices", ".0%")
    rate.set_ylim(-0.06, 1.06)
    rate.yaxis.set_major_formatter(PercentFormatter(1.0))
    rate.axhline(CHANCE, color="grey", linestyle="--", linewidth=1)
    rate.annotate("50 % = chance: the change is not seen", (0, CHANCE), xycoords=("axes fraction", "data"),
                  xytext=(4, 3), textcoords="offset points", fontsize=8, color="grey")
    rate.set(ylabel="changed photo found (95 % interval)", title="Which one was changed?")
    fig.suptitle(title)
    return fig


def write_chart(group: GroupReport, path: Path, title: str) -> Path:
    """Write `report_figure(group, title)` as a PNG, atomically."""
    buf = io.BytesIO()
    report_figure(group, title).savefig(buf, format="png", dpi=120)
    return atomic_write(path, buf.getvalue())
