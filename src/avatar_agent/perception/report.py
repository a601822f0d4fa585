"""Writes what `analyze` produces: features.csv, summary.json and features.png."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from avatar_agent.perception.face import FACE_FEATURE_NAMES
from avatar_agent.perception.offline import FileAnalysis
from avatar_agent.perception.prosody import window_stats

FACE_COLUMNS = ["face_present", "blink", *FACE_FEATURE_NAMES]
VOICE_COLUMNS = ["f0_hz", "voiced", "energy_db", "speech", "f0_rel_st", "energy_rel_db"]
# the signals a person reads first: frowning, smiling, mouth corners down, mouth open
PLOT_AUS = (
    "au04_brow_lowerer",
    "au12_lip_corner_puller",
    "au15_lip_corner_depressor",
    "au26_jaw_drop",
)


def _fmt(x: float | bool) -> str:
    if isinstance(x, bool | np.bool_):
        return "1" if x else "0"
    return f"{float(x):.5g}"


def write_csv(a: FileAnalysis, path: Path) -> int:
    """One row per analysed video frame and per 10 ms voice hop, in time order."""
    rel_names = [f"{n}_rel" for n in FACE_FEATURE_NAMES]
    header = ["t", "stream", *FACE_COLUMNS, *rel_names, *VOICE_COLUMNS]
    rows: list[tuple[float, list[str]]] = []
    for f, rel in zip(a.face, a.face_rel, strict=True):
        vals = [_fmt(f.present), _fmt(f.blink), *(_fmt(v) for v in f.vector())]
        vals += [_fmt(v) for v in rel] + [""] * len(VOICE_COLUMNS)
        rows.append((f.t, [f"{f.t:.3f}", "face", *vals]))
    if a.voice is not None:
        v = a.voice
        blank = [""] * (len(FACE_COLUMNS) + len(rel_names))
        for i, fr in enumerate(v.frames):
            speech = any(s <= fr.t < e for s, e in v.speech)
            vals = [_fmt(fr.f0), _fmt(fr.voiced), _fmt(fr.energy_db), _fmt(speech)]
            vals += [_fmt(v.f0_rel_st[i]), _fmt(v.energy_rel_db[i])]
            rows.append((fr.t, [f"{fr.t:.3f}", "voice", *blank, *vals]))
    rows.sort(key=lambda r: r[0])
    assert all(len(r) == len(header) for _, r in rows)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(r for _, r in rows)
    return len(rows)


def summary(a: FileAnalysis) -> dict[str, Any]:
    out: dict[str, Any] = {
        "file": str(a.path),
        "duration_s": round(a.duration, 3),
        "analysis_s": round(a.elapsed_s, 3),
        "x_real_time": round(a.speed, 1),
        "startup_s": round(a.startup_s, 3),
        "x_real_time_after_startup": round(a.speed_after_startup, 1),
        "face_fps": a.fps,
    }
    if a.has_video:
        present = [f for f in a.face if f.present]
        out["face"] = {
            "frames": len(a.face),
            "present_ratio": round(len(present) / max(1, len(a.face)), 4),
            "blinks": sum(
                1 for p, c in zip(a.face, a.face[1:], strict=False) if c.blink and not p.blink
            ),
            "mean": (
                {n: round(float(np.mean([f.vector()[i] for f in present])), 5)
                 for i, n in enumerate(FACE_FEATURE_NAMES)}
                if present else {}
            ),
            "micro_expressions": [asdict(m) for m in a.micro],
        }
    if a.voice is not None:
        frames = a.voice.frames
        voiced = [f for f in frames if f.voiced]
        stats = window_stats(frames, max(a.duration, 0.01)) if frames else None
        out["voice"] = {
            "hops": len(frames),
            "voiced_ratio": round(len(voiced) / max(1, len(frames)), 4),
            "speech_segments": [[round(s, 3), round(e, 3)] for s, e in a.voice.speech],
            "stats": _clean(asdict(stats)) if stats is not None else None,
        }
    return out


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: unknown values become null."""
    return {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()
    }


def plot(a: FileAnalysis, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (2 if a.has_video else 0) + (2 if a.voice is not None else 0)
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.3 * panels + 0.6), sharex=True)
    axes = np.atleast_1d(axes)
    ax_i = 0
    if a.has_video:
        t = np.array([f.t for f in a.face])
        present = np.array([f.present for f in a.face])
        # relative to the person's own baseline: what stands out is what changed
        rel = np.array(a.face_rel)
        ax = axes[ax_i]
        for name in PLOT_AUS:
            y = rel[:, FACE_FEATURE_NAMES.index(name)].astype(float)
            ax.plot(t, np.where(present, y, np.nan), lw=1.2, label=name.replace("_", " "))
        ax.axhline(0, color="0.5", lw=0.6)
        for f in a.face:
            if f.blink:
                ax.axvline(f.t, color="0.8", lw=0.6, zorder=0)
        for m in a.micro:
            ax.axvspan(m.onset, m.onset + m.duration, color="tab:red", alpha=0.15)
        ax.set_ylabel("face action\n(z vs own baseline)")
        ax.legend(loc="upper right", fontsize=8, ncol=4)
        ax.set_title(f"{a.path.name}: face (grey = blinks, red = micro-expressions) and voice")
        ax = axes[ax_i + 1]
        for name, label in (("yaw", "yaw"), ("pitch", "pitch"), ("roll", "roll")):
            ax.plot(t, np.where(present, [getattr(f, name) for f in a.face], np.nan), lw=1,
                    label=label)
        ax.set_ylabel("head pose (°)")
        ax.legend(loc="upper right", fontsize=8, ncol=3)
        ax_i += 2
    if a.voice is not None:
        fr = a.voice.frames
        t = np.array([f.t for f in fr])
        f0 = np.array([f.f0 if f.voiced else np.nan for f in fr])
        ax = axes[ax_i]
        for s, e in a.voice.speech:
            ax.axvspan(s, e, color="tab:green", alpha=0.12)
        ax.plot(t, f0, ".", ms=2, color="tab:blue")
        if not np.isfinite(f0).any():
            ax.text(0.5, 0.5, "no voiced speech", transform=ax.transAxes, ha="center",
                    color="0.4")
            ax.set_yticks([])
        ax.set_ylabel("pitch F0 (Hz)\n(green = speech)")
        ax = axes[ax_i + 1]
        energy = np.array([f.energy_db for f in fr])
        ax.plot(t, energy, lw=0.8, color="tab:orange")
        ax.set_ylabel("energy (dBFS)")
        if energy.size:
            ax.set_ylim(float(energy.min()) - 3, max(float(energy.max()) + 3, -20.0))
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(a: FileAnalysis, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out_dir / "features.csv",
        "summary": out_dir / "summary.json",
        "plot": out_dir / "features.png",
    }
    write_csv(a, paths["csv"])
    paths["summary"].write_text(json.dumps(summary(a), indent=2) + "\n", encoding="utf-8")
    plot(a, paths["plot"])
    return paths
