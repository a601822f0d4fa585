"""Evaluation that mirrors a call: a speaker's clips chained into calls and streamed
through the code a live call runs after perception.

For each speaker, calls are built from their clips in seeded orders, with a silence
gap between clips as between turns:

* ``angry_first``: angry clips until at least :data:`ANGRY_LEAD_S` of anger, then others;
* ``neutral_first``: one neutral or calm clip first, then others;
* ``all``: every clip of the speaker in a random order (each clip scored once, with
  only what the call had heard before it: the per-clip figures with the causal state);
* ``calm_only``: every neutral and calm clip (false alarms per hour of calm speech).

Each call is played at ``affect.rate_hz`` through :class:`CallAffectCore` (the same
windows, caller reference, smoothing and levels as a live call) and the operators'
:class:`EscalationPolicy`, with no look-ahead: a voice row is visible
:data:`VOICE_LAG_S` after its time, as prosody delivers it live, and a speech embedding
is refreshed once a second of speech, as perception does. Calls of many speakers run
in lockstep so the model reads their windows in batches.

The rows are the clips' own (extracted once, by the same perception cores as a call);
a speech embedding is the clip's nearest earlier window, so the 2 s after a clip
boundary are read as the clip's start after silence.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from avatar_agent.affect.call_core import CallAffectCore
from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectOutput, AffectWindow
from avatar_agent.affect.reference import NO_REFERENCE, Reference
from avatar_agent.core.config import Config
from avatar_agent.core.levels import LEVELS
from avatar_agent.operators.escalation import REASON_REQUEST, EscalationPolicy
from avatar_agent.perception.features import (
    FACE_DIM,
    FACE_HZ,
    VOICE_DIM,
    VOICE_HZ,
    VOICED_COL,
    silence_row,
)
from avatar_agent.perception.live import MIN_EMBED_VOICED_S
from avatar_agent.perception.ring import FeatureRing
from avatar_agent.perception.speech_embedding import HOP_S
from avatar_agent.training.dataset import CALM_LABELS, ClipFeatures, windows_of

F32 = npt.NDArray[np.float32]
Predict = Callable[[Sequence[AffectWindow]], list[AffectOutput]]

ANGRY_FIRST, NEUTRAL_FIRST, ALL, CALM_ONLY = "angry_first", "neutral_first", "all", "calm_only"
KINDS = (ANGRY_FIRST, NEUTRAL_FIRST, ALL, CALM_ONLY)
ANGRY_LEAD_S = 12.0
MAX_OTHERS = 8  # clips after the lead of angry_first and neutral_first calls
GAP_S = (0.6, 1.5)  # silence between two clips, drawn per gap
VOICE_LAG_S = 0.3
ESCALATE_WITHIN_S = 10.0


@dataclass(frozen=True)
class Segment:
    clip: ClipFeatures
    start: float
    end: float


@dataclass(frozen=True)
class CallPlan:
    speaker: str
    kind: str
    modality: str  # "voice", "face" or "voice+face": what the call streams
    segments: tuple[Segment, ...]

    @property
    def duration(self) -> float:
        return self.segments[-1].end + GAP_S[0] if self.segments else 0.0


@dataclass
class CallResult:
    plan: CallPlan
    times: list[float] = field(default_factory=list)
    anger: list[float] = field(default_factory=list)  # smoothed index, what levels read
    raw_anger: list[float] = field(default_factory=list)  # the window's own index
    levels: list[str] = field(default_factory=list)
    escalations: list[float] = field(default_factory=list)
    segment_of_tick: list[int] = field(default_factory=list)  # -1 in gaps and silence
    # per segment: the caller's reference when it began, and the clip's reading with it
    refs: dict[int, Reference] = field(default_factory=dict)
    clip_outputs: dict[int, npt.NDArray[np.float64]] = field(default_factory=dict)

    @property
    def first_escalation(self) -> float | None:
        return self.escalations[0] if self.escalations else None

    def max_level(self, i: int) -> str:
        """The highest level while segment i (or the gap after it) was playing."""
        seg = self.plan.segments[i]
        stop = self.plan.segments[i + 1].start if i + 1 < len(self.plan.segments) else np.inf
        reached = [lv for t, lv in zip(self.times, self.levels, strict=True)
                   if seg.start <= t < stop]
        return max(reached, key=LEVELS.index) if reached else LEVELS[0]


def _modalities(clips: Sequence[ClipFeatures]) -> list[str]:
    out = []
    if all(c.voice is not None for c in clips):
        out.append("voice")
    if all(c.face is not None for c in clips):
        out.append("face")
    if len(out) == 2:
        out.append("voice+face")
    return out


def _chain(clips: Sequence[ClipFeatures], rng: random.Random) -> tuple[Segment, ...]:
    t = rng.uniform(*GAP_S) / 2  # a breath before the first word
    out = []
    for c in clips:
        out.append(Segment(c, t, t + c.duration))
        t += c.duration + rng.uniform(*GAP_S)
    return tuple(out)


def plan_calls(clips: Sequence[ClipFeatures], seed: int = 0) -> list[CallPlan]:
    """The calls of every speaker among ``clips``, in every modality they allow."""
    by: dict[str, list[ClipFeatures]] = defaultdict(list)
    for c in clips:
        by[c.label.speaker].append(c)
    plans = []
    for speaker in sorted(by):
        rng = random.Random(f"{seed}:{speaker}")
        own = sorted(by[speaker], key=lambda c: str(c.path))
        groups: dict[str, list[ClipFeatures]] = defaultdict(list)
        for c in own:  # a call streams one kind of media: split by what clips carry
            groups["+".join(_modalities([c]))].append(c)
        for group in groups.values():
            for kind, chosen in _orders(group, rng):
                for modality in _modalities(chosen):
                    plans.append(CallPlan(speaker, kind, modality, _chain(chosen, rng)))
    return plans


def _orders(
    clips: list[ClipFeatures], rng: random.Random
) -> list[tuple[str, list[ClipFeatures]]]:
    angry = [c for c in clips if c.label.emotion == "angry"]
    calm = [c for c in clips if c.label.emotion in CALM_LABELS]
    out: list[tuple[str, list[ClipFeatures]]] = []
    if angry:
        lead: list[ClipFeatures] = []
        for c in rng.sample(angry, len(angry)):
            if sum(x.duration for x in lead) >= ANGRY_LEAD_S:
                break
            lead.append(c)
        rest = [c for c in clips if c not in lead]
        out.append((ANGRY_FIRST, lead + rng.sample(rest, min(MAX_OTHERS, len(rest)))))
    if calm:
        first = rng.choice(calm)
        rest = [c for c in clips if c is not first]
        out.append((NEUTRAL_FIRST, [first, *rng.sample(rest, min(MAX_OTHERS, len(rest)))]))
    out.append((ALL, rng.sample(clips, len(clips))))
    if calm:
        out.append((CALM_ONLY, rng.sample(calm, len(calm))))
    return out


class _Stream:
    """One planned call played tick by tick into the rings a live call fills."""

    def __init__(self, plan: CallPlan, cfg: Config) -> None:
        self.plan = plan
        self.core = CallAffectCore(cfg.affect)
        self.policy = EscalationPolicy(cfg.escalation)
        p = cfg.perception
        self.voice = FeatureRing(VOICE_DIM, round(p.ring_seconds * VOICE_HZ) + 1)
        self.face = FeatureRing(FACE_DIM, round(p.ring_seconds * FACE_HZ) + 1)
        self.use_voice = "voice" in plan.modality
        self.use_face = "face" in plan.modality
        self.result = CallResult(plan)
        self._voice_i = 0  # next 10 ms frame index of the call to deliver
        self._face_i = 0
        self._starts = np.array([s.start for s in plan.segments])
        self._next_embed = 0.0
        self.speech: tuple[float, F32] | None = None

    def _last_started(self, t: float) -> int:
        return int(np.searchsorted(self._starts, t, side="right")) - 1

    def _segment_at(self, t: float) -> int:
        """Index of the segment playing at call time t, or -1 in a gap."""
        i = self._last_started(t)
        return i if i >= 0 and t < self.plan.segments[i].end else -1

    def _row(self, t: float, voice: bool) -> F32:
        """The clip's voice (or face) row playing at call time t; silence (or no face)
        in the gaps between clips."""
        i = self._segment_at(t)
        if i >= 0:
            seg = self.plan.segments[i]
            rows = seg.clip.voice if voice else seg.clip.face
            assert rows is not None
            k = round((t - seg.start) * (VOICE_HZ if voice else FACE_HZ))
            if 0 <= k < len(rows):
                return np.asarray(rows[k], np.float32)
        return silence_row() if voice else np.zeros(FACE_DIM, np.float32)

    def advance(self, now: float) -> None:
        """Deliver everything perception would have delivered by ``now``."""
        if self.use_voice:
            while (t := self._voice_i / VOICE_HZ) <= now - VOICE_LAG_S:
                self.voice.append(t, self._row(t, voice=True))
                self._voice_i += 1
            self._embed(now)
        if self.use_face:
            while (t := self._face_i / FACE_HZ) <= now:
                self.face.append(t, self._row(t, voice=False))
                self._face_i += 1

    def _embed(self, now: float) -> None:
        """Once a second, the embedding of the last 2 s if the caller spoke in them."""
        if now < 2.0 or now < self._next_embed:
            return
        self._next_embed = now + HOP_S
        _, rows = self.voice.window(now - 2.0)
        if (rows[:, VOICED_COL] > 0.5).sum() < MIN_EMBED_VOICED_S * VOICE_HZ:
            return
        last = self._last_started(now)
        if last < 0:
            return
        clip, start = self.plan.segments[last].clip, self.plan.segments[last].start
        if clip.speech is None or clip.speech_ends is None:
            return
        # only a window that has ended: early in a clip the call keeps its last one
        k = int(np.searchsorted(clip.speech_ends, now - start + 1e-3, side="right")) - 1
        if k >= 0:
            self.speech = (now, clip.speech[k])

    def record(self, now: float, out: AffectOutput | None) -> None:
        r = self.result
        seg = self._segment_at(now)
        if seg >= 0 and seg not in r.refs:
            # what the call had learned before this clip: its reading is scored with it
            r.refs[seg] = self.core.reference.reference()
        if out is None:  # no window: the core has already let its rows go
            return
        snap = self.core.observe(now, out)
        esc = self.policy.update(now, snap.anger_index, snap.level)
        if esc is not None and esc.reason != REASON_REQUEST:
            r.escalations.append(now)
        r.times.append(now)
        r.anger.append(snap.anger_index)
        r.raw_anger.append(out.anger_index)
        r.levels.append(snap.level)
        r.segment_of_tick.append(seg)


def run_calls(
    predict: Predict,
    plans: Sequence[CallPlan],
    cfg: Config,
    progress: Callable[[int], object] | None = None,
) -> list[CallResult]:
    """Play every call to its end; the model reads each tick's windows in one batch."""
    streams = [_Stream(p, cfg) for p in plans]
    period = 1.0 / cfg.affect.rate_hz
    end = max((p.duration for p in plans), default=0.0)
    tick = 0
    while (now := (tick + 1) * period) <= end + period:
        live = [s for s in streams if now <= s.plan.duration + period]
        pending: list[tuple[_Stream, AffectWindow]] = []
        for s in live:
            s.advance(now)
            w = s.core.window(now, s.voice, s.face, s.speech if s.use_voice else None)
            if w is None:
                s.record(now, None)
            else:
                pending.append((s, w))
        outs = predict([w for _, w in pending]) if pending else []
        for (s, _), out in zip(pending, outs, strict=True):
            s.record(now, out)
        tick += 1
        if progress is not None:
            progress(1)
    _read_clips([s.result for s in streams if s.plan.kind == ALL], predict)
    return [s.result for s in streams]


def _read_clips(results: Sequence[CallResult], predict: Predict, batch: int = 512) -> None:
    """Each clip of the calls read whole (its 2 s windows, 1 s apart, inside the clip)
    against the reference its call held when it began: the per-clip figures with the
    causal state, free of the windows that straddle two clips."""
    wins: list[AffectWindow] = []
    owner: list[tuple[CallResult, int]] = []
    for r in results:
        for i, seg in enumerate(r.plan.segments):
            for w in windows_of(seg.clip, r.refs.get(i, NO_REFERENCE)):
                if r.plan.modality == "voice":
                    w = replace(w, face=None)
                elif r.plan.modality == "face":
                    w = replace(w, voice=None, speech=None)
                if w.has_voice or w.has_face:
                    wins.append(w)
                    owner.append((r, i))
    sums: dict[tuple[int, int], npt.NDArray[np.float64]] = {}
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for k in range(0, len(wins), batch):
        outs = predict(wins[k : k + batch])
        for (r, i), out in zip(owner[k : k + batch], outs, strict=True):
            key = (id(r), i)
            vec = np.array([*out.probs, out.arousal, out.valence], np.float64)
            sums[key] = sums.get(key, 0.0) + vec
            counts[key] += 1
    for r in results:
        for i in range(len(r.plan.segments)):
            if counts.get((id(r), i)):
                r.clip_outputs[i] = sums[(id(r), i)] / counts[(id(r), i)]


def segment_outputs(
    results: Sequence[CallResult], kind: str = ALL
) -> list[tuple[ClipFeatures, npt.NDArray[np.float64], float, float]]:
    """Per clip of the ``kind`` calls: mean probabilities, arousal and valence of its
    windows, read with what the call had learned before it began."""
    out = []
    for r in results:
        if r.plan.kind != kind:
            continue
        for i, seg in enumerate(r.plan.segments):
            mean = r.clip_outputs.get(i)
            if mean is None:
                continue
            out.append((seg.clip, mean[: len(EMOTIONS)], float(mean[-2]), float(mean[-1])))
    return out
