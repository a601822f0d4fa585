"""A call's timeline for review: the JSON document, its CSV form and a PNG plot.

Pure functions of a timeline dict (as `GET /api/calls/{id}/timeline` returns it);
the plot is CPU work and is called off the event loop.
"""

from __future__ import annotations

import csv
import io
from typing import Any

CSV_COLUMNS = ("record", "t", "arousal", "valence", "anger_index", "level", "emotion",
               "kind", "detail")


def _detail(ev: dict[str, Any]) -> str:
    return "; ".join(f"{k}={v}" for k, v in ev.items() if k not in ("t", "kind"))


def timeline_csv(tl: dict[str, Any]) -> str:
    """One row per curve point ("affect") and per event ("event"), in time order."""
    rows: list[dict[str, Any]] = [{"record": "affect", **p} for p in tl["points"]]
    rows += [{"record": "event", "t": e["t"], "kind": e["kind"], "detail": _detail(e)}
             for e in tl["events"]]
    rows.sort(key=lambda r: (float(r["t"]), r["record"]))
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


EVENT_COLOURS = {"level": "#b45309", "micro_expression": "#7c3aed", "escalation": "#dc2626",
                 "takeover": "#2563eb", "human_request": "#db2777"}


def timeline_png(tl: dict[str, Any]) -> bytes:
    """Anger index, arousal and valence over the call, events as vertical lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Figure, not pyplot: pyplot's global state is not safe from worker threads.
    fig = Figure(figsize=(10, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    pts = tl["points"]
    title = f"call {tl['call']['id'][:12]}"
    if pts:
        t = [p["t"] for p in pts]
        ax.plot(t, [p["anger_index"] for p in pts], color="#dc2626", label="anger index")
        ax.set_ylim(0, 100)
        ax2 = ax.twinx()
        ax2.plot(t, [p["arousal"] for p in pts], color="#0891b2", label="arousal")
        ax2.plot(t, [p["valence"] for p in pts], color="#16a34a", label="valence")
        ax2.set_ylim(-1, 1)
        ax2.set_ylabel("arousal / valence")
        lines = [*ax.get_lines(), *ax2.get_lines()]
        ax.legend(lines, [str(ln.get_label()) for ln in lines], loc="upper left", fontsize=8)
    else:
        reason = "no affect data (no consent to analysis)" if not tl["call"]["consent_analysis"] \
            else "no affect data"
        ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes)
    for ev in tl["events"]:
        colour = EVENT_COLOURS.get(ev["kind"])
        if colour is not None:
            ax.axvline(ev["t"], color=colour, alpha=0.5, linewidth=1)
    ax.set_xlabel("seconds into the call")
    ax.set_ylabel("anger index")
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
