"""Callers the shipped model never trained on, streamed through a live call's code.

Audio goes in as the 20 ms, 48 kHz stereo frames WebRTC delivers, through the live
voice step of perception (`perception.live._voice_step`: downsampling, prosody,
log-mel), the speech encoder once a second of speech, the face mesh and expression
network frame by frame, then the call's affect core (windows, caller reference,
smoothing, levels) and the operators' escalation policy, with media time advanced
step by step: no look-ahead, no sleeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.signal import resample_poly

from avatar_agent.affect.call_core import CallAffectCore
from avatar_agent.affect.model import AffectPredictor
from avatar_agent.core.config import Config
from avatar_agent.operators.escalation import EscalationPolicy
from avatar_agent.perception.audio import Downsampler, load_audio
from avatar_agent.perception.face import FaceAnalyzer
from avatar_agent.perception.face_expression import FaceExpression
from avatar_agent.perception.features import FACE_DIM, VOICE_DIM, VOICED_COL, LogMelStream, face_row
from avatar_agent.perception.live import MIN_EMBED_VOICED_S, VOICE_STEP_S, _voice_step
from avatar_agent.perception.prosody import ProsodyTracker
from avatar_agent.perception.ring import FeatureRing
from avatar_agent.perception.speech_embedding import HOP_S, RATE, SampleRing, SpeechEncoder
from avatar_agent.runtime import model_path

IN_RATE = 48_000
FRAME = 960  # 20 ms at 48 kHz


@pytest.fixture(scope="module")
def predictor() -> AffectPredictor:
    return AffectPredictor.load(model_path(Config()), "cpu")


@pytest.fixture(scope="module")
def held_out(held_out_speakers: set[str]) -> set[str]:
    return held_out_speakers


@dataclass
class LiveCall:
    """One consenting customer's call after the transport, driven in media time."""

    predictor: AffectPredictor
    cfg: Config = field(default_factory=Config)

    def __post_init__(self) -> None:
        self.core = CallAffectCore(self.cfg.affect)
        self.policy = EscalationPolicy(self.cfg.escalation)
        self.voice = FeatureRing(VOICE_DIM, 1001)
        self.face = FeatureRing(FACE_DIM, 151)
        self.speech: tuple[float, np.ndarray] | None = None
        self.levels: list[str] = []
        self.anger: list[float] = []
        self.escalations: list[float] = []
        self._next_affect = 1.0 / self.cfg.affect.rate_hz

    def tick_affect(self, now: float) -> None:
        while self._next_affect <= now:
            t = self._next_affect
            self._next_affect += 1.0 / self.cfg.affect.rate_hz
            window = self.core.window(t, self.voice, self.face, self.speech)
            if window is None:
                continue
            snap = self.core.observe(t, self.predictor.predict([window])[0])
            self.levels.append(snap.level)
            self.anger.append(snap.anger_index)
            if self.policy.update(t, snap.anger_index, snap.level) is not None:
                self.escalations.append(t)

    def play_voice(self, samples: np.ndarray, encoder: SpeechEncoder) -> None:
        """16 kHz mono in, as 48 kHz stereo WebRTC frames, 0.1 s of them per step."""
        pcm = resample_poly(samples, 3, 1)
        pcm = np.clip(pcm * 32767, -32768, 32767).astype(np.int16)
        down, tracker, mel, ring = Downsampler(IN_RATE, 2), ProsodyTracker(), LogMelStream(), \
            SampleRing()
        step = round(VOICE_STEP_S * IN_RATE / FRAME)
        next_embed = 0.0
        for start in range(0, len(pcm) - FRAME + 1, FRAME * step):
            frames = []
            for i in range(start, min(len(pcm) - FRAME + 1, start + FRAME * step), FRAME):
                chunk = np.repeat(pcm[i : i + FRAME], 2)[None, :]
                f = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
                f.sample_rate = IN_RATE
                frames.append(f)
            hops, rows = _voice_step(down, tracker, mel, ring, frames)
            for fr, row in zip(hops, rows, strict=True):
                self.voice.append(fr.t, row)
            t_end = ring.total / RATE
            if ring.full and t_end >= next_embed:
                next_embed = t_end + HOP_S
                _, recent = self.voice.window(t_end - 2.0)
                if (recent[:, VOICED_COL] > 0.5).sum() >= MIN_EMBED_VOICED_S * 100:
                    self.speech = (t_end, encoder.embed(ring.samples())[0])
            self.tick_affect(t_end)

    def play_face(self, frames: list[np.ndarray], fps: float, analyzer: FaceAnalyzer) -> None:
        for k, rgb in enumerate(frames):
            t = k / fps
            self.face.append(t, face_row(analyzer.analyze(rgb, t)))
            self.tick_affect(t)


def _with_gaps(paths: list[Path], gap_s: float = 0.8) -> np.ndarray:
    parts = []
    for p in paths:
        parts += [load_audio(p)[0], np.zeros(round(gap_s * RATE), np.float32)]
    return np.concatenate(parts).astype(np.float32)


def test_a_caller_angry_from_the_first_word_escalates_and_calm_speech_does_not(
    predictor: AffectPredictor, held_out: set[str], data_dir: Path
) -> None:
    encoder = SpeechEncoder.load()
    actor = sorted(s for s in held_out if s.startswith("ravdess:"))[0].split(":")[1]
    folder = data_dir / "speech_emotion" / "ravdess_full" / f"Actor_{actor}"
    angry = sorted(folder.glob("03-01-05-02-*.flac")) + sorted(folder.glob("03-01-05-01-*.flac"))
    calm = sorted(folder.glob("03-01-01-*.flac")) + sorted(folder.glob("03-01-02-*.flac"))

    upset = LiveCall(predictor)
    upset.play_voice(_with_gaps(angry[:4]), encoder)  # some 15 s of anger from the start
    print(f"actor {actor} angry: escalations at {upset.escalations}, "
          f"anger {np.round(upset.anger[::4], 0)}")
    assert upset.escalations and upset.escalations[0] <= 10.0
    assert "furious" in upset.levels or "dissatisfied" in upset.levels

    steady = LiveCall(predictor)
    steady.play_voice(_with_gaps(calm), encoder)  # every neutral and calm clip, ~1 min
    print(f"actor {actor} calm: max anger {max(steady.anger):.0f}, "
          f"levels {sorted(set(steady.levels))}")
    assert not steady.escalations
    assert "furious" not in steady.levels
    # a calm caller taught the reference, so later windows are read against them
    assert steady.core.reference.voice_s > 5.0
    assert upset.core.reference.refused > upset.core.reference.accepted


def test_a_silent_neutral_face_stays_calm_for_20_seconds(
    predictor: AffectPredictor, held_out: set[str], data_dir: Path
) -> None:
    unseen = sorted(s.split(":")[1] for s in held_out if s.startswith("mead:")) or ["M030"]
    clip = data_dir / "face_video" / "mead" / f"{unseen[0]}_front_neutral_level1_001.mp4"
    with av.open(str(clip)) as box:
        stream = box.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(stream)]
    # played forwards and backwards until 20 s at 15 fps, a call's analysis rate
    loop = frames + frames[::-1]
    picked = [loop[round(k * fps / 15) % len(loop)] for k in range(20 * 15)]
    call = LiveCall(predictor)
    with FaceAnalyzer(expression=FaceExpression.load()) as analyzer:
        call.play_face(picked, 15.0, analyzer)
    print(f"neutral face: max anger {max(call.anger):.0f}, levels {sorted(set(call.levels))}")
    assert len(call.levels) >= 70  # it was read all along, not skipped
    assert set(call.levels) == {"calm"} and not call.escalations


def test_evaluate_call_protocol_writes_calls_and_repeats_itself(
    tmp_path: Path, data_dir: Path
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    emodb = data_dir / "speech_emotion" / "emodb"
    for p in sorted(emodb.glob("03*.flac"))[::3] + sorted(emodb.glob("08*.flac"))[::3]:
        (clips / p.name).symlink_to(p)
    reports = []
    for k in range(2):
        out = tmp_path / f"r{k}" / "report.json"
        res = subprocess.run(
            [sys.executable, "-m", "avatar_agent.cli", "evaluate", "--data", str(clips),
             "--out", str(out), "--device", "cpu", "--cache", str(tmp_path / "cache")],
            capture_output=True, text=True, timeout=600,
        )
        assert res.returncode == 0, res.stderr
        assert "angry start" in res.stdout
        reports.append(json.loads(out.read_text()))
    a, b = reports
    assert a["protocol"] == "call"
    calls = a["calls"]["overall"]
    assert calls["angry_first"]["n_speakers"] == 2
    assert calls["calm_only"]["hours"] > 0
    assert 0.0 <= calls["calibration"]["ece"] <= 1.0
    assert {"angry", "neutral"} <= set(calls["level_per_emotion"])
    assert calls["per_clip_causal"]["n_clips"] == a["n_clips"]
    assert a["calls"]["curves"] and a["calls"]["curves"][0]["t"]
    for r in reports:
        r.pop("model", None)
        for row in r["per_clip"] + r["skipped"]:
            row["file"] = Path(row["file"]).name
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
