"""Speech recognition on real recordings: Whisper base through CTranslate2, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avatar_agent.core.threadcpu import PoolCpu, claim_new_threads
from avatar_agent.perception.audio import load_audio
from avatar_agent.perception.speech_embedding import SpeechEncoder, read_weights
from avatar_agent.speech.asr import Transcriber, log_mel

KIDS = "speech_emotion/ravdess_full/Actor_01/03-01-05-02-01-01-01.flac"  # angry, strong
DOGS = "speech_emotion/ravdess_full/Actor_12/03-01-02-01-02-02-12.flac"  # calm
MANDARIN = "speech_emotion/casia/wangzhe_neutral_202.flac"  # 我马上拿来


@pytest.fixture(scope="module")
def asr() -> Transcriber:
    return Transcriber.load(blob=read_weights())


def _words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c == " ").split())


def test_english_statements_are_heard(asr: Transcriber, data_dir: Path) -> None:
    for clip, said in ((KIDS, "kids are talking by the door"),
                       (DOGS, "dogs are sitting by the door")):
        out = asr.transcribe(load_audio(data_dir / clip)[0])
        assert _words(out.text).endswith(said), out.text
        assert out.language == "en" and 2.5 < out.audio_s < 6 and out.compute_s > 0


def test_mandarin_is_heard(asr: Transcriber, data_dir: Path) -> None:
    out = asr.with_language("zh").transcribe(load_audio(data_dir / MANDARIN)[0])
    assert "马上" in out.text or "馬上" in out.text, out.text


def test_mandarin_is_heard_and_matched(asr: Transcriber, data_dir: Path) -> None:
    """A Mandarin turn finds the entry whose question it is, among the example's."""
    from avatar_agent.core.config import PROJECT_ROOT
    from avatar_agent.speech.knowledge import Entry, KnowledgeIndex, load_knowledge

    entries = load_knowledge(PROJECT_ROOT / "configs" / "knowledge" / "example.yaml")
    entries.append(Entry(id="fetch", questions=["我马上拿来"], answer="好的，我等您。"))
    heard = asr.with_language("zh").transcribe(load_audio(data_dir / MANDARIN)[0]).text
    match = KnowledgeIndex(entries).best(heard)
    assert match is not None and match.entry.id == "fetch" and match.score >= 0.45, heard


def test_silence_and_noise_give_no_words_and_unknown_language_is_refused(
    asr: Transcriber,
) -> None:
    assert asr.transcribe(np.zeros(16000, np.float32)).text == ""
    burst = np.random.default_rng(0).standard_normal(8000) * 0.3 * np.hanning(8000)
    assert asr.transcribe(burst.astype(np.float32)).text == ""  # a cough, not words
    with pytest.raises(ValueError, match="no language"):
        asr.with_language("xx")


def test_features_match_the_speech_encoders(data_dir: Path) -> None:
    """The recogniser's numpy log-mel is the speech embedding's (torch), on 2 s of speech:
    one definition of Whisper's input in two places, checked to agree."""
    audio = load_audio(data_dir / KIDS)[0][:32000]
    enc = SpeechEncoder.__new__(SpeechEncoder)
    torch.nn.Module.__init__(enc)
    from avatar_agent.perception.speech_embedding import whisper_filters
    enc.register_buffer("window", torch.hann_window(400))
    enc.register_buffer("filters", torch.from_numpy(whisper_filters()))
    ref = enc.log_mel(torch.from_numpy(audio)[None])[0].numpy()
    ours = log_mel(audio, n_frames=200)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_recognition_cpu_is_counted_as_its_own_pool(data_dir: Path) -> None:
    """CTranslate2 recognises on a worker thread Python does not know: loaded under
    claim_new_threads, that thread's CPU is the pool's, not "native"."""
    pools = PoolCpu()
    with claim_new_threads("asr-under-test"):
        asr = Transcriber.load(blob=read_weights())
    before = pools.totals().get("asr-under-test", 0.0)
    asr.transcribe(load_audio(data_dir / KIDS)[0])
    after = pools.totals()
    assert after.get("asr-under-test", 0.0) - before > 0.02  # a 2 s clip: tens of ms
