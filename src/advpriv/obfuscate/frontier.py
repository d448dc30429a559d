"""The privacy–utility frontier as a picture: one point per configuration, grouped into series.

Left panel: private-attribute accuracy of the fresh classifier (filled) and of the linear probe (hollow) against
utility accuracy, with the majority rate and majority + 5 points drawn across. Right panel: the fresh decoder's
MS-SSIM against utility accuracy, with the score of the average training face (what a decoder that ignores the
features can always reach) when given. Each point is labelled with its name, the encoder's ms per image on one thread,
and its fp16 feature bytes.

A point is a dict: name, series, encoder_ms, feature_bytes_fp16, and report (an `EncoderReport.as_dict()`).

Example:
    >>> r = dict(utility_accuracy=0.9, private_accuracy=0.6, linear_probe_accuracy=0.58, majority_rate=0.56,
    ...          ms_ssim=0.4)
    >>> fig = frontier_figure([dict(name="d8", series="bottleneck", encoder_ms=2.0, feature_bytes_fp16=16, report=r)])
    >>> [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]
    [['bottleneck', 'linear probe (hollow)'], ['bottleneck']]
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from advpriv.images import atomic_write

MS_SSIM_TARGET = 0.35
PRIVATE_MARGIN = 0.05


def _label(p: dict) -> str:
    return f"{p['name']}\n{p['encoder_ms']:.1f} ms, {p['feature_bytes_fp16']:,} B"


def frontier_figure(points: list[dict], average_face_ms_ssim: float | None = None) -> Figure:
    """The two-panel frontier of `points` (see the module docstring)."""
    fig = Figure(figsize=(15, 6.5), layout="constrained")
    private, recon = fig.subplots(1, 2)
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in points:
        groups[p["series"]].append(p)
    colours = dict(zip(groups, [f"C{i}" for i in range(10)] * 3))
    for series, members in groups.items():
        members = sorted(members, key=lambda p: p["report"]["utility_accuracy"])
        x = [p["report"]["utility_accuracy"] for p in members]
        style = dict(color=colours[series], marker="o", linestyle="-" if len(members) > 1 else "none", alpha=0.85)
        private.plot(x, [p["report"]["private_accuracy"] for p in members], label=series, **style)
        recon.plot(x, [p["report"]["ms_ssim"] for p in members], label=series, **style)
        probes = [(u, p["report"]["linear_probe_accuracy"]) for u, p in zip(x, members)
                  if p["report"].get("linear_probe_accuracy") is not None]
        if probes:
            private.scatter(*zip(*probes), facecolors="none", edgecolors=colours[series], s=60)
        for u, p in zip(x, members):
            for ax, key in ((private, "private_accuracy"), (recon, "ms_ssim")):
                ax.annotate(_label(p), (u, p["report"][key]), fontsize=6.5, xytext=(4, 3), textcoords="offset points")
    if points:
        majority = points[0]["report"]["majority_rate"]
        private.axhline(majority, color="grey", linewidth=1)
        private.axhline(majority + PRIVATE_MARGIN, color="grey", linestyle="--", linewidth=1)
        private.text(private.get_xlim()[0], majority + PRIVATE_MARGIN, " majority + 5 points (target)", fontsize=7,
                     va="bottom", color="grey")
    if average_face_ms_ssim is not None:
        recon.axhline(average_face_ms_ssim, color="black", linestyle=":", linewidth=1)
        recon.text(recon.get_xlim()[0], average_face_ms_ssim, f" average training face {average_face_ms_ssim:.3f}",
                   fontsize=7, va="bottom")
    recon.axhline(MS_SSIM_TARGET, color="grey", linestyle="--", linewidth=1)
    recon.text(recon.get_xlim()[0], MS_SSIM_TARGET, f" MS-SSIM {MS_SSIM_TARGET} (target)", fontsize=7,
               va="bottom", color="grey")
    private.set(xlabel="utility accuracy (cloud classifier, test)",
                ylabel="private-attribute accuracy of a fresh attacker (test)",
                title="Fresh classifier (filled) and linear probe (hollow)")
    recon.set(xlabel="utility accuracy (cloud classifier, test)", ylabel="fresh decoder MS-SSIM (test)",
              title="Fresh decoder")
    handles, labels = private.get_legend_handles_labels()
    hollow = Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor="black", linestyle="none")
    private.legend(handles + [hollow], labels + ["linear probe (hollow)"], fontsize=8, loc="best")
    recon.legend(fontsize=8, loc="best")
    return fig


def plot_frontier(points: list[dict], path: str | Path, average_face_ms_ssim: float | None = None) -> Path:
    """Write `frontier_figure(points, average_face_ms_ssim)` as a PNG, atomically."""
    buf = io.BytesIO()
    frontier_figure(points, average_face_ms_ssim).savefig(buf, format="png", dpi=110)
    return atomic_write(path, buf.getvalue())
