from __future__ import annotations

import csv
from pathlib import Path

import pytest

from avatar_agent.affect.labels import (
    EMOTIONS,
    HIGH_AROUSAL,
    LOW_AROUSAL,
    ClipLabel,
    discover,
    one_per_recording,
    parse_label,
)


def test_emotion_order_and_arousal_groups() -> None:
    assert EMOTIONS == (
        "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"
    )  # fmt: skip
    assert sorted(HIGH_AROUSAL) == ["angry", "fearful", "happy", "surprised"]
    assert sorted(LOW_AROUSAL) == ["calm", "neutral", "sad"]
    assert not HIGH_AROUSAL & LOW_AROUSAL
    assert set(EMOTIONS) - HIGH_AROUSAL - LOW_AROUSAL == {"disgust"}


# --- RAVDESS -------------------------------------------------------------------------


def test_ravdess_audio_only() -> None:
    assert parse_label(Path("Actor_05/03-01-05-02-01-02-05.flac")) == ClipLabel(
        corpus="ravdess",
        speaker="ravdess:05",
        emotion="angry",
        raw_label="angry",
        arousal="high",
        intensity=2,
        modality="audio-only",
    )


@pytest.mark.parametrize(
    ("code", "emotion", "arousal"),
    [
        ("01", "neutral", "low"),
        ("02", "calm", "low"),
        ("03", "happy", "high"),
        ("04", "sad", "low"),
        ("05", "angry", "high"),
        ("06", "fearful", "high"),
        ("07", "disgust", None),
        ("08", "surprised", "high"),
    ],
)
def test_ravdess_emotion_codes(code: str, emotion: str, arousal: str | None) -> None:
    label = parse_label(Path(f"03-01-{code}-01-01-01-12.wav"))
    assert label is not None
    assert (label.emotion, label.arousal, label.speaker) == (emotion, arousal, "ravdess:12")


@pytest.mark.parametrize(
    ("name", "modality"),
    [
        ("01-01-03-01-01-02-05_facecroppad.avi", "audio-visual"),
        ("01-01-03-01-01-02-05.MP4", "audio-visual"),
        ("02-02-04-02-02-01-24.mp4", "video-only"),
        ("03-02-06-01-01-01-01.WAV", "audio-only"),
    ],
)
def test_ravdess_modality_suffix_and_extension_case(name: str, modality: str) -> None:
    label = parse_label(Path(name))
    assert label is not None
    assert label.modality == modality
    assert label.corpus == "ravdess"


@pytest.mark.parametrize(
    "name",
    [
        "04-01-05-01-01-01-05.wav",  # modality 04 does not exist
        "03-03-05-01-01-01-05.wav",  # vocal channel 03 does not exist
        "03-01-09-01-01-01-05.wav",  # emotion 09
        "03-01-05-03-01-01-05.wav",  # intensity 03
        "03-01-05-01-01-01-25.wav",  # only 24 actors
        "03-01-05-01-01-01-00.wav",
        "03-01-01-02-01-01-05.wav",  # neutral was never recorded at strong intensity
        "03-01-05-01-01-01-5.wav",
        "03-01-05-01-01-01-05x.wav",  # a suffix must start with "_"
        "x03-01-05-01-01-01-05.wav",
    ],
)
def test_ravdess_malformed_is_none(name: str) -> None:
    assert parse_label(Path(name)) is None


# --- CREMA-D -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "emotion", "raw", "intensity", "arousal"),
    [
        ("1001_DFA_ANG_XX.wav", "angry", "anger", None, "high"),
        ("1091_TSI_DIS_HI.flv", "disgust", "disgust", 3, None),
        ("1022_IEO_FEA_MD.mp3", "fearful", "fear", 2, "high"),
        ("1050_ITS_HAP_LO.wav", "happy", "happy", 1, "high"),
        ("1001_IWW_NEU_XX.wav", "neutral", "neutral", None, "low"),
        ("1001_MTI_SAD_HI.WAV", "sad", "sad", 3, "low"),
    ],
)
def test_crema_d(name: str, emotion: str, raw: str, intensity: int | None, arousal: str) -> None:
    label = parse_label(Path(name))
    assert label is not None
    assert label.corpus == "crema-d"
    assert label.speaker == f"crema-d:{name[:4]}"
    assert (label.emotion, label.raw_label, label.intensity, label.arousal) == (
        emotion,
        raw,
        intensity,
        arousal,
    )
    assert label.modality is None


@pytest.mark.parametrize(
    "name",
    ["1001_DFA_SUR_XX.wav", "1001_DFA_ANG_ZZ.wav", "2001_DFA_ANG_XX.wav", "1001_DF_ANG_XX.wav"],
)
def test_crema_d_malformed_is_none(name: str) -> None:
    assert parse_label(Path(name)) is None


# --- EmoDB ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("letter", "emotion", "raw", "arousal"),
    [
        ("W", "angry", "anger", "high"),
        ("L", None, "boredom", "low"),
        ("E", "disgust", "disgust", None),
        ("A", "fearful", "fear", "high"),
        ("F", "happy", "happiness", "high"),
        ("T", "sad", "sadness", "low"),
        ("N", "neutral", "neutral", "low"),
    ],
)
def test_emodb(letter: str, emotion: str | None, raw: str, arousal: str) -> None:
    label = parse_label(Path(f"emodb/16b10{letter}b.flac"))
    assert label == ClipLabel("emodb", "emodb:16", emotion, raw, arousal, None, None)


@pytest.mark.parametrize(
    "name",
    [
        "04a01Wa.wav",  # speaker 04 is not in EmoDB
        "17a01Wa.wav",
        "03c01Wa.wav",  # texts are a.. and b..
        "03a01Xa.wav",  # no emotion X
        "03a01WA.wav",  # version is lower case
        "03a01W.wav",
        "03a01Waa.wav",
    ],
)
def test_emodb_malformed_is_none(name: str) -> None:
    assert parse_label(Path(name)) is None


# --- MEAD ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "speaker", "emotion", "raw", "intensity", "arousal"),
    [
        ("M030_front_angry_level3_001.mp4", "mead:M030", "angry", "angry", 3, "high"),
        ("W009_front_contempt_level3_001.mp4", "mead:W009", None, "contempt", 3, None),
        ("W011_front_disgusted_level3_001.mp4", "mead:W011", "disgust", "disgusted", 3, None),
        ("M030_front_fear_level3_001.MP4", "mead:M030", "fearful", "fear", 3, "high"),
        ("W009_front_neutral_level1_001.mp4", "mead:W009", "neutral", "neutral", 1, "low"),
        ("M030_left_30_happy_level_2_017.mp4", "mead:M030", "happy", "happy", 2, "high"),
        ("M030_sad_3_001.mp4", "mead:M030", "sad", "sad", 3, "low"),  # EAMM naming
        ("W011_happy_1_002.mkv", "mead:W011", "happy", "happy", 1, "high"),
    ],
)
def test_mead(
    name: str, speaker: str, emotion: str | None, raw: str, intensity: int, arousal: str | None
) -> None:
    assert parse_label(Path(name)) == ClipLabel(
        "mead", speaker, emotion, raw, arousal, intensity, None
    )


@pytest.mark.parametrize(
    "name",
    [
        "M030_front_bored_level3_001.mp4",
        "M030_back_angry_level3_001.mp4",
        "X030_front_angry_level3_001.mp4",
        "M030_front_angry_level4_001.mp4",
        "M030_front_angry_level3.mp4",
        "sad.mp4",  # EAMM crops without a speaker carry no usable label
        "M030_sad_3.mp4",
    ],
)
def test_mead_malformed_is_none(name: str) -> None:
    assert parse_label(Path(name)) is None


# --- junk ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["bbaf2n.mpg", "WolfgangLanger_Pexels.mp4", "labels.csv", "", ".flac", "angry.wav"],
)
def test_unlabelled_names_are_none(name: str) -> None:
    assert parse_label(Path(name)) is None


def test_name_without_extension_still_parses() -> None:
    label = parse_label(Path("03a01Wa"))
    assert label is not None and label.emotion == "angry"


def test_directories_do_not_label_a_file() -> None:
    assert parse_label(Path("03-01-05-01-01-01-05/clip.wav")) is None


# --- discover ------------------------------------------------------------------------


def test_discover_on_a_tree(tmp_path: Path) -> None:
    files = [
        "b/03a01Wa.flac",
        "a/03-01-05-01-01-01-05.wav",
        "a/nested/deeper/1001_DFA_ANG_XX.MP4",
        "c/bbaf2n.mpg",
        "c/notes.txt",
        "c/labels.csv",
        "c/03-01-05-01-01-01-05.txt",  # labelled name but not media
    ]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    (tmp_path / "d" / "03a02Wa.wav").mkdir(parents=True)  # a directory, not a clip

    clips, skipped = discover(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p, _ in clips] == [
        "a/03-01-05-01-01-01-05.wav",
        "a/nested/deeper/1001_DFA_ANG_XX.MP4",
        "b/03a01Wa.flac",
    ]
    assert [lab.corpus for _, lab in clips] == ["ravdess", "crema-d", "emodb"]
    assert skipped == [
        {"file": str(tmp_path / "c/bbaf2n.mpg"), "reason": skipped[0]["reason"]}
    ]
    assert skipped[0]["reason"]


def test_discover_empty(tmp_path: Path) -> None:
    assert discover(tmp_path) == ([], [])


# --- the real data -------------------------------------------------------------------


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


_CSV_EMOTION = {"disgusted": "disgust", "fear": "fearful", "contempt": None}


def test_every_real_clip_with_a_labelled_name_parses(data_dir: Path) -> None:
    clips, skipped = discover(data_dir)
    by_name = {p.relative_to(data_dir).as_posix(): lab for p, lab in clips}

    ravdess = sorted((data_dir / "speech_emotion" / "ravdess").rglob("*.flac"))
    emodb = sorted((data_dir / "speech_emotion" / "emodb").glob("*.flac"))
    assert len(ravdess) == 1194 and len(emodb) == 535
    for path in ravdess:
        label = by_name[path.relative_to(data_dir).as_posix()]
        assert label.corpus == "ravdess" and label.modality == "audio-only"
        assert label.speaker == "ravdess:" + path.parent.name.removeprefix("Actor_")
    for path in emodb:
        assert by_name[path.relative_to(data_dir).as_posix()].corpus == "emodb"
    assert {lab.speaker for lab in by_name.values() if lab.corpus == "emodb"} == {
        f"emodb:{s}" for s in ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")
    }
    assert sum(lab.raw_label == "boredom" for lab in by_name.values()) > 0

    # Each labels.csv beside the videos must agree with what the name says.
    for folder in ("face_video/mead", "face_video/mead_eamm", "face_video/ravdess_actor05"):
        rows = _csv_rows(data_dir / folder / "labels.csv")
        assert rows
        for row in rows:
            rel = f"{folder}/{row['file']}"
            want = _CSV_EMOTION.get(row["emotion"], row["emotion"])
            if row["speaker" if "speaker" in row else "actor"].startswith("unknown"):
                # EAMM crops named only by emotion: no speaker, so no usable label.
                assert rel not in by_name
                assert {"file": str(data_dir / rel), "reason": skipped[0]["reason"]} in skipped
                continue
            label = by_name[rel]
            assert label.emotion == want, rel
            if folder.endswith("ravdess_actor05"):
                assert label.speaker == "ravdess:05" and label.modality == "audio-visual"
            else:
                assert label.speaker == "mead:" + row["speaker"].removeprefix("mead_")

    # The corpora that list their clips in a labels.csv: every row is read, with the
    # speakers and emotion names of the table.
    for corpus, n_speakers in (("casia", 3), ("urdu", 20), ("emovo", 4)):
        rows = _csv_rows(data_dir / "speech_emotion" / corpus / "labels.csv")
        assert rows
        for row in rows:
            label = by_name[f"speech_emotion/{corpus}/{row['file']}"]
            assert label.corpus == corpus and label.speaker == f"{corpus}:{row['speaker']}"
            assert label.emotion == row["emotion"] and label.emotion in EMOTIONS
        assert len({lab.speaker for lab in by_name.values() if lab.corpus == corpus}) == n_speakers

    # RAVDESS whole and cut are the same recordings of the same actors: one copy each.
    kept, dropped = one_per_recording(clips)
    kept_names = {p.relative_to(data_dir).as_posix() for p, _ in kept}
    assert not any(n.startswith("speech_emotion/ravdess/") for n in kept_names)
    assert len(dropped) == 1194 and len(kept) == len(clips) - 1194
    assert len({lab.speaker for _, lab in kept}) == 60

    # What is left over is unlabelled footage, not a labelled clip that failed to parse.
    for entry in skipped:
        rel = Path(entry["file"]).relative_to(data_dir).as_posix()
        assert rel.startswith(("talking_face/", "face_video/mead_eamm/")), rel


def test_labels_csv_labels_clips_its_names_do_not(tmp_path: Path) -> None:
    corpus = tmp_path / "speech" / "mycorpus"
    (corpus / "sub").mkdir(parents=True)
    for name in ("a1.flac", "sub/b2.flac", "c3.flac", "d4.flac", "e5.flac", "f6.flac"):
        (corpus / name).write_bytes(b"")
    (corpus / "labels.csv").write_text(
        "file,emotion,speaker,sex\n"
        "a1.flac,fearful,spk1,f\n"
        "sub/b2.flac,Anger,mycorpus_spk2,m\n"
        "c3.flac,boredom,spk1,f\n"
        "d4.flac,angry,unknown(crop),\n"
        "e5.flac,,spk3,m\n"
    )
    clips, skipped = discover(tmp_path)
    got = {p.name: lab for p, lab in clips}
    assert set(got) == {"a1.flac", "b2.flac", "c3.flac"}
    assert got["a1.flac"].speaker == "mycorpus:spk1" and got["a1.flac"].emotion == "fearful"
    assert got["a1.flac"].arousal == "high"
    # the corpus prefix of a speaker id is not doubled; other names of an emotion map
    assert got["b2.flac"].speaker == "mycorpus:spk2" and got["b2.flac"].emotion == "angry"
    # a label outside EMOTIONS still carries what it tells (arousal, the raw word)
    assert got["c3.flac"].emotion is None and got["c3.flac"].arousal == "low"
    assert got["c3.flac"].raw_label == "boredom"
    reasons = {Path(s["file"]).name: s["reason"] for s in skipped}
    assert reasons == {
        "d4.flac": "labels.csv names no speaker",
        "e5.flac": "labels.csv gives no emotion",
        "f6.flac": "file name carries no recognised emotion label",
    }


def test_labels_csv_with_a_corpus_column_and_a_bad_table(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "one.wav").write_bytes(b"")
    (tmp_path / "x" / "labels.csv").write_text("file,emotion,speaker,corpus\none.wav,sad,p,Zed\n")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "two.wav").write_bytes(b"")
    (tmp_path / "y" / "labels.csv").write_text("name,mood\ntwo.wav,sad\n")
    clips, skipped = discover(tmp_path)
    assert [(p.name, lab.speaker, lab.emotion) for p, lab in clips] == [("one.wav", "zed:p", "sad")]
    assert [Path(s["file"]).name for s in skipped] == ["two.wav"]


def test_one_per_recording_keeps_the_whole_copy(tmp_path: Path) -> None:
    name = "03-01-05-01-01-01-07.flac"
    (tmp_path / "cut").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "cut" / name).write_bytes(b"x" * 10)
    (tmp_path / "full" / name).write_bytes(b"x" * 30)
    (tmp_path / "full" / "03-01-01-01-01-01-07.flac").write_bytes(b"x" * 5)
    clips, _ = discover(tmp_path)
    kept, dropped = one_per_recording(clips)
    assert sorted(p.relative_to(tmp_path).as_posix() for p, _ in kept) == [
        "full/03-01-01-01-01-01-07.flac", f"full/{name}"]
    assert dropped == [{"file": str(tmp_path / "cut" / name),
                        "reason": "another copy of the same recording is used"}]
