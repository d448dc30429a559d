"""Summary of bench/obfuscator_hard.py: means and spreads over seeds (points.md) and the frontier (frontier.png).

Means are over the seeds measured (a value measured at fewer seeds than its row says so); ± is the sample
standard deviation over seeds. A point's gender leak is its worst attacker: the most accurate of the fresh VGG classifier, the linear probe,
kNN, the averaging attack (K = 16) and, where run, the ResNet-18-style classifier.

    OMP_NUM_THREADS=1 .venv/bin/python bench/obfuscator_hard.py --summarise
"""

from __future__ import annotations

import io
import math
import statistics
from collections import defaultdict
from pathlib import Path

from matplotlib.figure import Figure

from advpriv.images import atomic_write

MARGIN = 0.05
ATTACKERS = {"classifier": "private_accuracy", "probe": "linear_probe_accuracy", "kNN": "knn_accuracy",
             "averaging K=16": "averaging_accuracy", "ResNet": "resnet_accuracy"}


def values(point: dict) -> dict[str, float]:
    """The numbers of one measured point, flat."""
    r = point["report"]
    out = {"utility": r["utility_accuracy"], "majority": r["majority_rate"], "ms_ssim": r["ms_ssim"],
           "ssim_decoder": r.get("ssim_decoder_ms_ssim"), "average_face": point.get("average_face_ms_ssim"),
           "bayes": point.get("bayes_limit"), "train_min": point["train_s"] / 60,
           "evaluate_min": point["evaluate_s"] / 60}
    for name, key in ATTACKERS.items():
        out[name] = point.get(key, r.get(key))
    out["worst"] = max(v for k, v in out.items() if k in ATTACKERS and v is not None)
    out["worst_one_copy"] = max(v for k, v in out.items() if k in ATTACKERS and k != "averaging K=16" and v is not None)
    out["worst_margin"] = out["worst"] - out["majority"]
    tasks = point["config"]["utility"].split(",")
    for task, acc in zip(tasks, r.get("utility_accuracies") or [r["utility_accuracy"]]):
        out[task] = acc
    return {k: v for k, v in out.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}


def aggregate(points: list[dict]) -> dict[tuple[str, str], dict]:
    """(setting, name) → {"series", "seeds", "count", "mean": {...}, "std": {...}} over the seeds measured; "delta"
    is the mean utility minus the utility-only encoder's (split4) on the same split, paired by seed."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    reference = {(p["setting"], p["seed"]): p["report"]["utility_accuracy"] for p in points if p["name"] == "split4"}
    for p in points:
        groups[(p["setting"], p["name"])].append(p)
    out = {}
    for key, members in groups.items():
        rows = [values(p) for p in members]
        for row, p in zip(rows, members):
            if (p["setting"], p["seed"]) in reference:
                row["delta"] = row["utility"] - reference[(p["setting"], p["seed"])]
        names = set.union(*(set(r) for r in rows))
        measured = {k: [r[k] for r in rows if k in r] for k in names}
        out[key] = {"series": members[0]["series"], "seeds": sorted(p["seed"] for p in members),
                    "count": {k: len(v) for k, v in measured.items()},
                    "mean": {k: statistics.fmean(v) for k, v in measured.items()},
                    "std": {k: statistics.stdev(v) if len(v) > 1 else math.nan for k, v in measured.items()}}
    return out


def cell(stats: dict, key: str, digits: int = 3) -> str:
    if key not in stats["mean"]:
        return "–"
    spread, count = stats["std"][key], stats["count"][key]
    text = f"{stats['mean'][key]:.{digits}f}" + ("" if math.isnan(spread) else f" ± {spread:.{digits}f}")
    return text + ("" if count == len(stats["seeds"]) else f" ({count} seed{'s' if count > 1 else ''})")


def smiling_table(agg: dict, setting: str) -> str:
    rows = {name: s for (st, name), s in agg.items() if st == setting}
    if not rows:
        return ""
    head = ("| configuration | seeds | Smiling | Δ vs utility-only (paired by seed) | gender: classifier | probe | kNN | "
            "averaging K=16 | ResNet-18-style | majority | worst − majority | VGG decoder MS-SSIM | SSIM-trained "
            "decoder MS-SSIM | average face | targets (gender ≤ maj+5 all attackers, Smiling ≥ ref−3, MS-SSIM ≤ "
            "avg face+0.02; ·: not measured) | train / evaluate min |\n|" + "---|" * 16)
    lines = [head]
    for name, s in rows.items():
        m = s["mean"]
        delta = "–" if "delta" not in m else f"{100 * m['delta']:+.1f} ± {100 * s['std']['delta']:.1f}"
        decoders = [m[k] for k in ("ms_ssim", "ssim_decoder") if k in m]
        checks = [m["worst_margin"] <= MARGIN,
                  m["delta"] >= -0.03 if "delta" in m else None,
                  max(decoders) <= m["average_face"] + 0.02 if decoders else None]
        lines.append(
            f"| {name} | {len(s['seeds'])} | {cell(s, 'Smiling')} | {delta} | {cell(s, 'classifier')} | "
            f"{cell(s, 'probe')} | {cell(s, 'kNN')} | {cell(s, 'averaging K=16')} | {cell(s, 'ResNet')} | "
            f"{cell(s, 'majority')} | {cell(s, 'worst_margin')} | {cell(s, 'ms_ssim')} | {cell(s, 'ssim_decoder')} | "
            f"{cell(s, 'average_face')} | {''.join('·' if c is None else '✓' if c else '✗' for c in checks)} | "
            f"{m['train_min']:.1f} / {m['evaluate_min']:.1f} |")
    return "\n".join(lines) + "\n"


TASKS = ("Smiling", "Heavy_Makeup", "Wearing_Lipstick", "Attractive")


def correlated_table(agg: dict) -> str:
    rows = {name: s for (st, name), s in agg.items() if st == "correlated"}
    if not rows:
        return ""
    head = ("| configuration | series | seeds | mean utility | Δ vs utility-only (paired) | " + " | ".join(TASKS)
            + " | gender: classifier | probe | kNN | averaging K=16 | worst attacker | majority | Bayes limit of the "
            "labels | worst ≤ maj+5 | train / evaluate min |\n|" + "---|" * 17)
    lines = [head]
    for name, s in rows.items():
        m = s["mean"]
        lines.append(
            f"| {name} | {s['series']} | {len(s['seeds'])} | {cell(s, 'utility')} | {cell(s, 'delta')} | "
            + " | ".join(cell(s, t) for t in TASKS)
            + f" | {cell(s, 'classifier')} | {cell(s, 'probe')} | {cell(s, 'kNN')} | {cell(s, 'averaging K=16')} | "
              f"{cell(s, 'worst')} | {cell(s, 'majority')} | {cell(s, 'bayes')} | "
              f"{'✓' if m['worst_margin'] <= MARGIN else '✗'} | {m['train_min']:.1f} / {m['evaluate_min']:.1f} |")
    private = [(s["mean"]["utility"], name) for name, s in rows.items() if s["mean"]["worst_margin"] <= MARGIN]
    best = (f"\nBest configuration with the worst attacker's mean gender accuracy ≤ majority + 5 points: "
            f"**{max(private)[1]}** (mean utility {max(private)[0]:.3f}).\n" if private else
            "\nNo configuration kept the worst attacker within majority + 5 points.\n")
    return "\n".join(lines) + "\n" + best


def frontier(agg: dict) -> Figure:
    """Worst-attacker gender accuracy against mean utility accuracy of the correlated setting, mean ± std."""
    rows = {name: s for (st, name), s in agg.items() if st == "correlated"}
    fig = Figure(figsize=(11, 7), layout="constrained")
    ax = fig.add_subplot()
    series: dict[str, list] = defaultdict(list)
    for name, s in rows.items():
        series[s["series"]].append((name, s))
    for i, (label, members) in enumerate(series.items()):
        members.sort(key=lambda m: m[1]["mean"]["utility"])
        x = [s["mean"]["utility"] for _, s in members]
        y = [s["mean"]["worst"] for _, s in members]
        ax.errorbar(x, y, xerr=[s["std"]["utility"] for _, s in members], yerr=[s["std"]["worst"] for _, s in members],
                    color=f"C{i}", marker="o", capsize=3, label=label, linestyle="-" if "noise" in label else "none")
        ax.scatter(x, [s["mean"]["worst_one_copy"] for _, s in members], facecolors="none", edgecolors=f"C{i}", s=50)
        for (name, s), u, g in zip(members, x, y):
            seeds = "" if len(s["seeds"]) >= 3 else f" ({len(s['seeds'])} seed{'s' if len(s['seeds']) > 1 else ''})"
            ax.annotate(name + seeds, (u, g), fontsize=8, xytext=(5, 3), textcoords="offset points", color=f"C{i}")
    if rows:
        means = [s["mean"] for s in rows.values()]
        majority, bayes = statistics.fmean(m["majority"] for m in means), statistics.fmean(m["bayes"] for m in means)
        ax.axhline(majority, color="grey", linewidth=1, label=f"majority rate {majority:.3f}")
        ax.axhline(majority + MARGIN, color="grey", linestyle="--", linewidth=1, label="majority + 5 points (target)")
        ax.axhline(bayes, color="black", linestyle=":", linewidth=1.5,
                   label=f"Bayes limit {bayes:.3f}: gender from the four utility labels alone")
    ax.set(xlabel="mean test accuracy over the four cloud tasks (Smiling, Heavy_Makeup, Wearing_Lipstick, Attractive)",
           ylabel="gender accuracy of the strongest fresh attacker (test)",
           title="Correlated utility, split by pseudo-identity, mean ± std over seeds. Filled: the strongest of VGG "
                 "classifier, linear probe,\nkNN and the averaging attack (K = 16); hollow: the strongest without "
                 "averaging (one copy of each face)")
    if rows:
        ax.legend(fontsize=8, loc="upper left")
    return fig


def summarise(points: list[dict], results: Path) -> None:
    agg = aggregate(points)
    sections = (("## Smiling, 64×52\n", smiling_table(agg, "smiling")),
                ("## Correlated utility, 64×52\n", correlated_table(agg)),
                ("## Smiling, 128×128 (celeba-attr's 89×109 faces upsampled)\n", smiling_table(agg, "smiling128")))
    text = ["# Means over seeds (generated by bench/obfuscator_hard.py --summarise)\n"]
    text += [part for head, table in sections if table for part in (head, table)]
    atomic_write(results / "points.md", "\n".join(text).encode())
    buf = io.BytesIO()
    frontier(agg).savefig(buf, format="png", dpi=110)
    atomic_write(results / "frontier.png", buf.getvalue())
