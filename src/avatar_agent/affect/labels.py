"""Emotion labels of the acted corpora, read from their file names.

The corpora encode speaker and emotion in the file name, so the name alone is the
label; a `labels.csv` beside the clips is never needed (and some copies lack one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)
HIGH_AROUSAL: frozenset[str] = frozenset({"angry", "fearful", "happy", "surprised"})
LOW_AROUSAL: frozenset[str] = frozenset({"neutral", "calm", "sad"})

MEDIA_EXTENSIONS: frozenset[str] = frozenset(
    {"wav", "flac", "mp3", "ogg", "m4a", "aac"}
    | {"mp4", "flv", "avi", "mkv", "mov", "webm", "mpg", "mpeg"}
)

CORPORA: tuple[str, ...] = ("ravdess", "crema-d", "emodb", "mead")


@dataclass(frozen=True)
class ClipLabel:
    corpus: str
    # Prefixed by corpus so that speakers of different corpora never merge in a
    # speaker-independent split.
    speaker: str
    # None when the corpus label has no counterpart among EMOTIONS (boredom, contempt).
    emotion: str | None
    raw_label: str
    arousal: str | None
    intensity: int | None
    modality: str | None


def arousal_of(emotion: str | None) -> str | None:
    """`"high"`, `"low"` or None (disgust and labels outside EMOTIONS have no group)."""
    if emotion in HIGH_AROUSAL:
        return "high"
    if emotion in LOW_AROUSAL:
        return "low"
    return None


_RAVDESS = re.compile(
    r"(?P<mod>0[1-3])-(?P<voc>0[12])-(?P<emo>0[1-8])-(?P<int>0[12])-(?P<stm>0[12])"
    r"-(?P<rep>0[12])-(?P<actor>\d{2})(?:_.*)?"
)
# RAVDESS codes 01..08 follow the order of EMOTIONS.
_RAVDESS_EMOTIONS = {f"{i:02d}": emotion for i, emotion in enumerate(EMOTIONS, start=1)}
_RAVDESS_MODALITY = {"01": "audio-visual", "02": "video-only", "03": "audio-only"}

_CREMA = re.compile(
    r"(?P<actor>1\d{3})_(?P<text>[A-Z]{3})_(?P<emo>ANG|DIS|FEA|HAP|NEU|SAD)_(?P<lvl>LO|MD|HI|XX)"
)
_CREMA_EMOTIONS = {
    "ANG": ("angry", "anger"),
    "DIS": ("disgust", "disgust"),
    "FEA": ("fearful", "fear"),
    "HAP": ("happy", "happy"),
    "NEU": ("neutral", "neutral"),
    "SAD": ("sad", "sad"),
}
# XX means "unspecified", not a fourth level.
_CREMA_LEVEL = {"LO": 1, "MD": 2, "HI": 3, "XX": None}

_EMODB = re.compile(
    r"(?P<spk>03|08|09|1[0-6])(?P<text>[ab]\d{2})(?P<emo>[WLEAFTN])(?P<ver>[a-z])"
)
_EMODB_EMOTIONS: dict[str, tuple[str | None, str]] = {
    "W": ("angry", "anger"),
    "L": (None, "boredom"),
    "E": ("disgust", "disgust"),
    "A": ("fearful", "fear"),
    "F": ("happy", "happiness"),
    "T": ("sad", "sadness"),
    "N": ("neutral", "neutral"),
}

_MEAD_EMOTION_WORDS = "angry|contempt|disgusted|fear|happy|neutral|sad|surprised"
_MEAD = re.compile(
    r"(?P<spk>[MW]\d{3})_(?:front|down|top|left_30|left_60|right_30|right_60)"
    rf"_(?P<emo>{_MEAD_EMOTION_WORDS})_level_?(?P<lvl>[1-3])_(?P<clip>\d{{3}})"
)
# The EAMM copy drops the view and the word "level".
_MEAD_EAMM = re.compile(
    rf"(?P<spk>[MW]\d{{3}})_(?P<emo>{_MEAD_EMOTION_WORDS})_(?P<lvl>[1-3])_(?P<clip>\d{{3}})"
)
_MEAD_EMOTIONS: dict[str, str | None] = {
    "angry": "angry",
    "contempt": None,
    "disgusted": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprised": "surprised",
}


def _label(
    corpus: str,
    speaker: str,
    emotion: str | None,
    raw: str,
    intensity: int | None,
    modality: str | None = None,
    arousal: str | None = None,
) -> ClipLabel:
    return ClipLabel(
        corpus=corpus,
        speaker=f"{corpus}:{speaker}",
        emotion=emotion,
        raw_label=raw,
        arousal=arousal if arousal is not None else arousal_of(emotion),
        intensity=intensity,
        modality=modality,
    )


def _ravdess(stem: str) -> ClipLabel | None:
    m = _RAVDESS.fullmatch(stem)
    if m is None or not 1 <= int(m["actor"]) <= 24:
        return None
    emotion = _RAVDESS_EMOTIONS[m["emo"]]
    intensity = int(m["int"])
    # RAVDESS recorded neutral at normal intensity only; "strong neutral" is a bad name.
    if emotion == "neutral" and intensity != 1:
        return None
    return _label(
        "ravdess", m["actor"], emotion, emotion, intensity, _RAVDESS_MODALITY[m["mod"]]
    )


def _crema(stem: str) -> ClipLabel | None:
    m = _CREMA.fullmatch(stem)
    if m is None:
        return None
    emotion, raw = _CREMA_EMOTIONS[m["emo"]]
    return _label("crema-d", m["actor"], emotion, raw, _CREMA_LEVEL[m["lvl"]])


def _emodb(stem: str) -> ClipLabel | None:
    m = _EMODB.fullmatch(stem)
    if m is None:
        return None
    emotion, raw = _EMODB_EMOTIONS[m["emo"]]
    # Boredom is plainly low arousal even though none of EMOTIONS stands for it.
    arousal = "low" if raw == "boredom" else None
    return _label("emodb", m["spk"], emotion, raw, None, arousal=arousal)


def _mead(stem: str) -> ClipLabel | None:
    m = _MEAD.fullmatch(stem) or _MEAD_EAMM.fullmatch(stem)
    if m is None:
        return None
    raw = m["emo"]
    return _label("mead", m["spk"], _MEAD_EMOTIONS[raw], raw, int(m["lvl"]))


def parse_label(path: Path) -> ClipLabel | None:
    """The label carried by a clip's file name, or None when the name follows no known scheme."""
    stem = path.stem
    for parse in (_ravdess, _crema, _emodb, _mead):
        label = parse(stem)
        if label is not None:
            return label
    return None


def is_media(path: Path) -> bool:
    return path.suffix[1:].lower() in MEDIA_EXTENSIONS


def discover(root: Path) -> tuple[list[tuple[Path, ClipLabel]], list[dict[str, str]]]:
    """Labelled media clips under `root`, sorted by path, and the media files left out.

    Files that are not media (csv, txt, licences) are neither returned nor reported.
    """
    clips: list[tuple[Path, ClipLabel]] = []
    skipped: list[dict[str, str]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and is_media(p)):
        label = parse_label(path)
        if label is None:
            skipped.append(
                {"file": str(path), "reason": "file name carries no recognised emotion label"}
            )
        else:
            clips.append((path, label))
    return clips, skipped
