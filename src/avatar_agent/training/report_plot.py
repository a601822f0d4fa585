"""One PNG that shows an affect evaluation report at a glance."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from avatar_agent.training.metrics import headline

_Matrix = np.ndarray[Any, np.dtype[np.float64]]


def _row_shares(matrix: _Matrix) -> _Matrix:
    totals = matrix.sum(axis=1, keepdims=True)
    # NaN rows (classes absent from the true labels) are drawn in the colormap's "bad"
    # grey instead of a misleading 0 %.
    shares = np.full_like(matrix, np.nan)
    np.divide(matrix, totals, out=shares, where=totals > 0)
    return shares


def write_report_png(report: Mapping[str, Any], path: Path) -> None:
    """Left: row-normalised confusion matrix with counts; right: per-class recall and UAR."""
    classes: list[str] = list(report["confusion"]["classes"])
    counts = np.asarray(report["confusion"]["matrix"], dtype=np.float64)
    shares = _row_shares(counts)
    row_n = counts.sum(axis=1).astype(int)

    calls = report.get("calls")
    fig = Figure(figsize=(14, 12.4 if calls else 6.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    if calls:
        subs: Any = fig.subfigures(2, 1)
        top, bottom = subs[0], subs[1]
        ax_cm, ax_rec = top.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
        ax_curves, ax_rel = bottom.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
        _draw_curves(ax_curves, calls.get("curves", []))
        _draw_reliability(ax_rel, calls["overall"]["calibration"])
    else:
        ax_cm, ax_rec = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})

    cmap = colormaps["Blues"].with_extremes(bad="#e6e6e6")
    image = ax_cm.imshow(shares, cmap=cmap, vmin=0.0, vmax=1.0)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if row_n[i] == 0:
                continue
            n = int(counts[i, j])
            share = float(shares[i, j])
            ax_cm.text(
                j,
                i,
                f"{n}\n{share:.0%}" if n else "·",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share > 0.55 else "#1a1a1a",
                fontweight="bold" if i == j else "normal",
            )
    ax_cm.set_xticks(range(len(classes)), classes, rotation=35, ha="right")
    row_labels = [f"{c} (n={n})" for c, n in zip(classes, row_n, strict=True)]
    ax_cm.set_yticks(range(len(classes)), row_labels)
    ax_cm.set_xlabel("predicted (argmax of probs)")
    ax_cm.set_ylabel("true label")
    ax_cm.set_title("Confusion matrix: count and share of true row")
    fig.colorbar(image, ax=ax_cm, fraction=0.046, pad=0.02, label="share of true class")

    recalls: Mapping[str, float | None] = report["per_class_recall"]
    values = [recalls.get(c) for c in classes]
    y = np.arange(len(classes))
    uar = report["uar"]
    colours = [
        "#bdbdbd" if v is None else ("#2b8cbe" if uar is None or v >= uar else "#de6b48")
        for v in values
    ]
    ax_rec.barh(y, [0.0 if v is None else v for v in values], color=colours, height=0.7)
    for yi, v in zip(y, values, strict=True):
        bar = 0.0 if v is None else v
        # Inside the bar where it fits, so the reference lines never run through the value.
        inside = v is not None and bar >= 0.15
        ax_rec.text(
            bar - 0.01 if inside else bar + 0.01,
            yi,
            "not in data" if v is None else f"{v:.2f}",
            va="center",
            ha="right" if inside else "left",
            color="white" if inside else "#1a1a1a",
            fontsize=9,
        )
    k = len(report["uar_classes"])
    if k:
        ax_rec.axvline(1.0 / k, color="#777777", linestyle=":", label=f"chance 1/{k}", zorder=0.5)
    if uar is not None:
        ax_rec.axvline(
            uar, color="#111111", linestyle="--", linewidth=1.6, label=f"UAR {uar:.3f}", zorder=0.5
        )
    ax_rec.set_yticks(y, classes)
    ax_rec.invert_yaxis()  # same top-to-bottom order as the confusion rows
    ax_rec.set_xlim(0.0, 1.08)
    ax_rec.set_xlabel("recall")
    ax_rec.set_title("Per-class recall (orange: below UAR)")
    ax_rec.grid(axis="x", alpha=0.3)
    if k:
        ax_rec.legend(loc="lower right", fontsize=9)

    title = headline(report)
    if "protocol" in report:
        title = f"{report['protocol']} protocol: {title}"
    fig.suptitle(title, fontsize=12, fontweight="bold")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


_EMOTION_COLOURS = {
    "angry": "#d7301f", "disgust": "#8c6bb1", "fearful": "#fdae6b", "happy": "#74c476",
    "surprised": "#fdd0a2", "sad": "#6baed6", "neutral": "#d9d9d9", "calm": "#c7e9c0",
}


def _draw_curves(ax: Any, curves: list[Mapping[str, Any]]) -> None:
    """Anger index of a few calls over time, the clips that played shaded by emotion,
    escalations marked: what an operator's live curve would have shown."""
    for k, c in enumerate(curves):
        offset = 110.0 * k
        for seg in c["segments"]:
            colour = _EMOTION_COLOURS.get(seg["emotion"] or "", "#f0f0f0")
            ax.fill_between([seg["start"], seg["end"]], offset, offset + 100, color=colour,
                            alpha=0.35, linewidth=0)
        ax.plot(c["t"], np.asarray(c["anger_index"]) + offset, color="#111111", linewidth=1.2)
        for t in c["escalations"]:
            ax.plot([t], [offset + 100], marker="v", color="#d7301f", markersize=9)
        ax.axhline(offset + 70, color="#d7301f", linestyle=":", linewidth=0.8)
        ax.axhline(offset + 40, color="#fd8d3c", linestyle=":", linewidth=0.8)
        ax.text(0.0, offset + 103, f"{c['speaker']} · {c['kind']} · {c['modality']}",
                fontsize=8, va="bottom")
    handles = [ax.fill_between([], [], color=col, alpha=0.35, label=e)
               for e, col in _EMOTION_COLOURS.items()]
    if curves:
        ax.legend(handles=handles, fontsize=7, ncol=4, loc="upper right")
    ax.set_xlabel("seconds into the call")
    ax.set_ylabel("anger index (each call on its own band; dotted: 40 and 70)")
    ax.set_yticks([])
    ax.set_title("Calls as an operator sees them (▼ escalation)")


def _draw_reliability(ax: Any, cal: Mapping[str, Any]) -> None:
    """Reliability diagram: per tenth of the anger index, the share of windows really angry."""
    bins = [b for b in cal["bins"] if b["n"]]
    x = [b["mean_index"] / 100 for b in bins]
    y = [b["share_angry"] for b in bins]
    ax.plot([0, 1], [0, 1], color="#777777", linestyle="--", linewidth=1, label="perfect")
    ax.plot(x, y, marker="o", color="#2b8cbe", label="anger index")
    for b, xi, yi in zip(bins, x, y, strict=True):
        ax.text(xi, yi + 0.03, str(b["n"]), fontsize=7, ha="center")
    ece = cal.get("ece")
    ax.set_title(f"Calibration: ECE {ece:.3f}" if ece is not None else "Calibration")
    ax.set_xlabel("anger index / 100 (window)")
    ax.set_ylabel("share of windows that are angry")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
