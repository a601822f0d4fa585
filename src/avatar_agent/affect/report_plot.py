"""One PNG that shows an affect evaluation report at a glance."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from avatar_agent.affect.metrics import headline

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

    fig = Figure(figsize=(14, 6.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
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

    fig.suptitle(headline(report), fontsize=13, fontweight="bold")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
