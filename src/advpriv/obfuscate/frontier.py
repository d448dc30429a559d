"""The privacy–utility frontier as a picture: one numbered point per configuration, grouped into series.

Left panel: private-attribute accuracy of the fresh classifier (filled) and of the linear probe (hollow) against
utility accuracy, with the majority rate and majority + 5 points drawn across. Right panel: the fresh decoder's
MS-SSIM against utility accuracy, with the score of the average training face (what a decoder that ignores the
features can always reach) when given. Points are numbered; the key under the panels names each one with the
encoder's time per image on one thread and its fp16 feature bytes, and the preset it is, if any.

A point is a dict: name, series, encoder_ms, feature_bytes_fp16, and report (an `EncoderReport.as_dict()`).

Example:
    >>> r = dict(utility_accuracy=0.9, private_accuracy=0.6, linear_probe_accuracy=0.58, majority_rate=0.56,
    ...          ms_ssim=0.4)
    >>> fig = frontier_figure([dict(name="d8", series="bottleneck", encoder_ms=2.0, feature_bytes_fp16=16, report=r)],
    ...                       utility="smiling", private="gender")
    >>> fig.axes[0].get_legend().get_texts()[1].get_text()
    'majority rate 0.560 (always guessing the commoner gender value)'
    >>> fig.axes[2].texts[1].get_text()
    ' 1  d8 (bottleneck): 2.0 ms, 16 B'
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from advpriv.images import atomic_write

MS_SSIM_TARGET = 0.35
PRIVATE_MARGIN = 0.05
KEY_COLUMNS = 2


def key_line(number: int, p: dict, presets: dict[str, str]) -> str:
    """One line of the key: the point's number, name, series, cost, and the preset it is."""
    preset = f" = the `{presets[p['name']]}` preset" if p["name"] in presets else ""
    return (f"{number:>2}  {p['name']}{preset} ({p['series']}): {p['encoder_ms']:.1f} ms, "
            f"{p['feature_bytes_fp16']:,} B")


def _number(ax: Axes, marks: list[tuple[float, float, int, str]]) -> None:
    """Write each point's number beside it; points too close to label apart share one label ("4, 6")."""
    ax.autoscale_view()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    groups: list[list] = []
    for mark in sorted(marks):
        near = next((g for g in groups if abs(g[0][0] - mark[0]) < 0.015 * (x1 - x0)
                     and abs(g[0][1] - mark[1]) < 0.02 * (y1 - y0)), None)
        near.append(mark) if near else groups.append([mark])
    for group in groups:
        colour = group[0][3] if len({m[3] for m in group}) == 1 else "black"
        ax.annotate(", ".join(str(m[2]) for m in group), group[0][:2], fontsize=8, xytext=(6, -3),
                    textcoords="offset points", color=colour)


def frontier_figure(points: list[dict], average_face_ms_ssim: float | None = None, utility: str = "utility",
                    private: str = "private-attribute", presets: dict[str, str] | None = None) -> Figure:
    """The two-panel frontier of `points` and its key (see the module docstring). `utility` and `private` name the
    cloud task and the secret attribute; `presets` maps a point's name to the preset it is."""
    presets = presets or {}
    rows = -(-len(points) // KEY_COLUMNS) + 2
    fig = Figure(figsize=(15, 6.5 + 0.2 * rows), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[6.5, 0.2 * rows])
    private_ax, recon = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    numbers = {p["name"]: i + 1 for i, p in enumerate(points)}
    labels: dict = {private_ax: [], recon: []}
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in points:
        groups[p["series"]].append(p)
    colours = dict(zip(groups, [f"C{i}" for i in range(10)] * 3))
    for series, members in groups.items():
        members = sorted(members, key=lambda p: p["report"]["utility_accuracy"])
        x = [p["report"]["utility_accuracy"] for p in members]
        style = dict(color=colours[series], marker="o", linestyle="-" if len(members) > 1 else "none", alpha=0.85)
        private_ax.plot(x, [p["report"]["private_accuracy"] for p in members], label=series, **style)
        recon.plot(x, [p["report"]["ms_ssim"] for p in members], label=series, **style)
        probes = [(u, p["report"]["linear_probe_accuracy"]) for u, p in zip(x, members)
                  if p["report"].get("linear_probe_accuracy") is not None]
        if probes:
            private_ax.scatter(*zip(*probes), facecolors="none", edgecolors=colours[series], s=60)
        for u, p in zip(x, members):
            number = numbers[p["name"]]
            for ax, key in ((private_ax, "private_accuracy"), (recon, "ms_ssim")):
                y = p["report"][key]
                if p["name"] in presets:
                    ax.plot(u, y, "o", markersize=14, markerfacecolor="none", markeredgecolor="black")
                    ax.annotate(f"{number} = {presets[p['name']]}", (u, y), fontsize=8, xytext=(0, 9), ha="center",
                                textcoords="offset points")
                else:
                    labels[ax].append((u, y, number, colours[series]))
    for ax, marks in labels.items():
        _number(ax, marks)
    if points:
        majority = points[0]["report"]["majority_rate"]
        private_ax.axhline(majority, color="grey", linewidth=1,
                           label=f"majority rate {majority:.3f} (always guessing the commoner {private} value)")
        private_ax.axhline(majority + PRIVATE_MARGIN, color="grey", linestyle="--", linewidth=1,
                           label="majority + 5 points (target)")
    if average_face_ms_ssim is not None:
        recon.axhline(average_face_ms_ssim, color="black", linestyle=":", linewidth=1,
                      label=f"average training face {average_face_ms_ssim:.3f}")
    recon.axhline(MS_SSIM_TARGET, color="grey", linestyle="--", linewidth=1, label=f"MS-SSIM {MS_SSIM_TARGET} (target)")
    task = f"{utility} accuracy of the cloud classifier (test)"
    private_ax.set(xlabel=task, ylabel=f"{private} accuracy of a fresh attacker (test)",
                   title=f"Can a fresh attacker read {private}? Classifier (filled), linear probe (hollow)")
    recon.set(xlabel=task, ylabel="fresh decoder MS-SSIM (test)", title="Can a fresh decoder rebuild the face?")
    handles, names = private_ax.get_legend_handles_labels()
    hollow = Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor="black", linestyle="none")
    private_ax.legend(handles + [hollow], names + ["linear probe (hollow)"], fontsize=8, loc="best")
    recon.legend(fontsize=8, loc="best")
    key = fig.add_subplot(grid[1, :])
    key.axis("off")
    lines = [key_line(numbers[p["name"]], p, presets) for p in points]
    per_column = -(-len(lines) // KEY_COLUMNS)
    key.text(0, 1, "Key. ms: the encoder's time per image on one CPU thread; B: bytes of fp16 features sent per "
                   "image; a black ring: a preset.", fontsize=8, va="top", transform=key.transAxes)
    for column in range(KEY_COLUMNS):
        key.text(column / KEY_COLUMNS, 1 - 1.6 / rows, "\n".join(lines[column * per_column:(column + 1) * per_column]),
                 fontsize=8, va="top", family="monospace", transform=key.transAxes)
    fig.suptitle(f"Obfuscator frontier against fresh attackers: utility task {utility}, private attribute {private}")
    return fig


def plot_frontier(points: list[dict], path: str | Path, average_face_ms_ssim: float | None = None,
                  **names: str | dict) -> Path:
    """Write `frontier_figure(points, average_face_ms_ssim, **names)` as a PNG, atomically."""
    buf = io.BytesIO()
    frontier_figure(points, average_face_ms_ssim, **names).savefig(buf, format="png", dpi=110)
    return atomic_write(path, buf.getvalue())
