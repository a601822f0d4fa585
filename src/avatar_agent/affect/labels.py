"""Emotion labels of labelled clips: from the file name, or from a `labels.csv`.

RAVDESS, CREMA-D, EmoDB and MEAD encode speaker and emotion in the file name, so the
name alone is the label. Other corpora (CASIA, URDU, EMOVO, ...) list their clips in
a `labels.csv` beside them (columns `file, emotion, speaker`, others optional, such as
`corpus`); a name that follows a known scheme wins over the table, so the two can
never disagree silently.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

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
LABELS_CSV = "labels.csv"

# Emotion words used in labels.csv files, as EMOTIONS names; None: a real label with
# no counterpart among EMOTIONS (it still trains arousal and valence where known).
CSV_EMOTIONS: dict[str, str | None] = {
    **{e: e for e in EMOTIONS},
    "anger": "angry", "fear": "fearful", "afraid": "fearful", "scared": "fearful",
    "happiness": "happy", "joy": "happy", "sadness": "sad", "surprise": "surprised",
    "disgusted": "disgust", "boredom": None, "bored": None, "contempt": None,
}
# Labels outside EMOTIONS whose arousal is plain anyway.
_LOW_AROUSAL_EXTRA = frozenset({"boredom", "bored"})


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


def _csv_speaker(raw: str, corpus: str) -> str | None:
    """The speaker id of a labels.csv row; None for an unknown speaker (the clip cannot
    be placed in a speaker-independent split, so it is left out)."""
    speaker = raw.strip()
    if not speaker or speaker.lower().startswith("unknown"):
        return None
    return speaker.removeprefix(f"{corpus}_")


def read_labels_csv(file: Path) -> tuple[dict[str, ClipLabel], list[dict[str, str]]]:
    """Labels of the clips a `labels.csv` lists, by file path relative to its folder,
    and the rows that cannot be used (with the reason).

    The corpus is the `corpus` column, else the folder's name; the speaker is the
    `speaker` column (or `actor`), prefixed by the corpus like every other label.
    """
    labels: dict[str, ClipLabel] = {}
    bad: list[dict[str, str]] = []
    with file.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or ())
        spk_col = "speaker" if "speaker" in fields else "actor" if "actor" in fields else None
        if "file" not in fields or "emotion" not in fields or spk_col is None:
            # some other table that happens to carry the name: its clips stay unlabelled
            log.warning("%s: no file, emotion and speaker columns; not read as labels", file)
            return labels, bad
        for row in reader:
            name = (row.get("file") or "").strip()
            if not name:
                continue
            corpus = (row.get("corpus") or "").strip().lower() or file.parent.name.lower()
            raw = (row.get("emotion") or "").strip().lower()
            speaker = _csv_speaker(row.get(spk_col) or "", corpus)
            where = str(file.parent / name)
            if not raw:
                bad.append({"file": where, "reason": f"{LABELS_CSV} gives no emotion"})
                continue
            if speaker is None:
                bad.append({"file": where, "reason": f"{LABELS_CSV} names no speaker"})
                continue
            if raw not in CSV_EMOTIONS:
                bad.append({"file": where, "reason": f"{LABELS_CSV}: unknown emotion {raw!r}"})
                continue
            emotion = CSV_EMOTIONS[raw]
            arousal = "low" if raw in _LOW_AROUSAL_EXTRA else None
            labels[name] = _label(corpus, speaker, emotion, raw, None, arousal=arousal)
    return labels, bad


def is_media(path: Path) -> bool:
    return path.suffix[1:].lower() in MEDIA_EXTENSIONS


def discover(root: Path) -> tuple[list[tuple[Path, ClipLabel]], list[dict[str, str]]]:
    """Labelled media clips under `root`, sorted by path, and the media files left out.

    A clip's label comes from its name (:func:`parse_label`), else from the nearest
    `labels.csv` in its folder or a folder above it (the path relative to that folder).
    Files that are not media (csv, txt, licences) are neither returned nor reported.
    """
    tables: dict[Path, tuple[dict[str, ClipLabel], dict[str, str]]] = {}
    for file in sorted(root.rglob(LABELS_CSV)):
        labels, bad = read_labels_csv(file)
        tables[file.parent] = (labels, {b["file"]: b["reason"] for b in bad})
    clips: list[tuple[Path, ClipLabel]] = []
    skipped: list[dict[str, str]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and is_media(p)):
        label = parse_label(path)
        reason = "file name carries no recognised emotion label"
        if label is None:
            label, reason = _from_tables(path, root, tables, reason)
        if label is None:
            skipped.append({"file": str(path), "reason": reason})
        else:
            clips.append((path, label))
    return clips, skipped


def _from_tables(
    path: Path,
    root: Path,
    tables: dict[Path, tuple[dict[str, ClipLabel], dict[str, str]]],
    reason: str,
) -> tuple[ClipLabel | None, str]:
    """The label the nearest labels.csv listing ``path`` gives, or why there is none."""
    for folder in (path.parent, *path.parent.parents):
        if folder in tables:
            labels, bad = tables[folder]
            label = labels.get(path.relative_to(folder).as_posix())
            if label is not None:
                return label, reason
            if str(path) in bad:
                return None, bad[str(path)]
        if folder == root:
            break
    return None, reason


def _length(path: Path) -> tuple[float, int]:
    """(duration from the container's header, file size): what tells a whole recording
    from a cut one; the size decides only when the header cannot be read."""
    import av

    try:
        with av.open(str(path)) as box:
            duration = float(box.duration or 0) / 1e6
    except (av.error.FFmpegError, OSError):
        duration = -1.0
    return duration, path.stat().st_size


def one_per_recording(
    clips: Sequence[tuple[Path, ClipLabel]],
) -> tuple[list[tuple[Path, ClipLabel]], list[dict[str, str]]]:
    """One copy of each recording: two copies of a corpus share corpus, speaker and file
    name (RAVDESS whole and cut to 2.4 s); the longer one, the whole one, is kept, so
    no speaker counts twice and no recording weighs double."""
    best: dict[tuple[str, str, str], tuple[Path, ClipLabel]] = {}
    for path, label in clips:
        key = (label.corpus, label.speaker, path.stem)
        kept = best.get(key)
        if kept is None or _length(path) > _length(kept[0]):
            best[key] = (path, label)
    chosen = {p for p, _ in best.values()}
    dropped = [{"file": str(p), "reason": "another copy of the same recording is used"}
               for p, _ in clips if p not in chosen]
    return [(p, lab) for p, lab in clips if p in chosen], dropped
