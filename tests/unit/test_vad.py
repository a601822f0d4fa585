"""Silero voice activity on real GRID / RAVDESS speech, silence and noise."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from avatar_agent.perception.audio import Downsampler, load_audio
from avatar_agent.perception.vad import CHUNK, VadEvent, VoiceActivity, detect_speech

RATE = 16_000


@pytest.fixture(scope="module")
def grid_audio(data_dir: Path) -> list[tuple[str, np.ndarray]]:
    clips = sorted((data_dir / "talking_face" / "grid").glob("*.mpg"))
    assert len(clips) == 10
    return [(c.name, load_audio(c)[0]) for c in clips]


def push_in_sizes(vad: VoiceActivity, x: np.ndarray, sizes: list[int]) -> list[VadEvent]:
    events: list[VadEvent] = []
    i = k = 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        events += vad.push(x[i : i + n])
        i += n
        k += 1
    return events + vad.flush()


def assert_alternating(events: list[VadEvent]) -> None:
    kinds = [e.kind for e in events]
    assert kinds == ["speech_start", "speech_end"] * (len(kinds) // 2)
    times = [e.t for e in events]
    assert times == sorted(times)


def test_speech_found_in_every_grid_clip(grid_audio: list[tuple[str, np.ndarray]]) -> None:
    for name, x in grid_audio:
        segments = detect_speech(x)
        assert segments, f"no speech found in {name}"
        total = sum(end - start for start, end in segments)
        assert 0.8 < total < x.size / RATE, (name, segments)
        assert all(0 <= s < e <= x.size / RATE + 0.032 for s, e in segments)


def test_no_speech_in_silence_or_quiet_noise() -> None:
    silence = np.zeros(3 * RATE, dtype=np.float32)
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(3 * RATE) * 10 ** (-60 / 20)).astype(np.float32)
    for x in (silence, noise):
        vad = VoiceActivity()
        assert vad.push(x) + vad.flush() == []
        assert not vad.is_speech
        assert vad.probabilities.size == 3 * RATE // CHUNK + 1
        assert float(vad.probabilities.max()) < 0.35


def test_events_alternate_over_several_utterances(
    grid_audio: list[tuple[str, np.ndarray]],
) -> None:
    gap = np.zeros(RATE, dtype=np.float32)
    x = np.concatenate([grid_audio[0][1], gap, grid_audio[1][1], gap, grid_audio[2][1]])
    vad = VoiceActivity()
    states = []
    events: list[VadEvent] = []
    for i in range(0, x.size, 320):  # 20 ms pushes, as a live call delivers
        new = vad.push(x[i : i + 320])
        events += new
        if new:
            states.append((new[-1].kind, vad.is_speech))
    events += vad.flush()
    assert_alternating(events)
    assert len(events) >= 6  # three utterances at least
    assert all(is_speech == (kind == "speech_start") for kind, is_speech in states)


def test_chunking_does_not_change_results(grid_audio: list[tuple[str, np.ndarray]]) -> None:
    x = np.concatenate([grid_audio[3][1], np.zeros(RATE // 2, dtype=np.float32)])
    whole = VoiceActivity(history_s=None)
    reference = whole.push(x) + whole.flush()
    odd = VoiceActivity(history_s=None)
    events = push_in_sizes(odd, x, [7, 333, 1001, 511, 513, 1])
    assert events == reference
    assert np.array_equal(odd.probabilities, whole.probabilities)
    assert_alternating(events)


def test_instances_keep_separate_state(grid_audio: list[tuple[str, np.ndarray]]) -> None:
    n = min(grid_audio[4][1].size, grid_audio[5][1].size)
    a_audio, b_audio = grid_audio[4][1][:n], grid_audio[5][1][:n]
    alone = VoiceActivity(history_s=None)
    alone.push(a_audio)
    a, b = VoiceActivity(history_s=None), VoiceActivity(history_s=None)
    for i in range(0, n, 960):  # interleaved, as two calls in one process would be
        a.push(a_audio[i : i + 960])
        b.push(b_audio[i : i + 960])
    assert not np.array_equal(a.probabilities, b.probabilities)
    assert np.array_equal(a.probabilities, alone.probabilities)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_matches_silero_reference_wrapper(grid_audio: list[tuple[str, np.ndarray]]) -> None:
    torch = pytest.importorskip("torch")
    from silero_vad import load_silero_vad

    x = grid_audio[0][1]
    ref_model = load_silero_vad(onnx=False)  # the TorchScript model, an independent runtime
    ref = [
        float(ref_model(torch.from_numpy(x[i : i + CHUNK]), RATE).item())
        for i in range(0, x.size - CHUNK + 1, CHUNK)
    ]
    vad = VoiceActivity(history_s=None)
    vad.push(x)
    assert np.max(np.abs(vad.probabilities - np.array(ref))) < 1e-3


def test_live_48k_stereo_path_finds_the_same_speech(data_dir: Path) -> None:
    clip = sorted((data_dir / "face_video" / "ravdess_actor05" / "full720p").glob("*.mp4"))[0]
    offline = detect_speech(load_audio(clip)[0])
    ds = Downsampler(48_000, channels=2)
    vad = VoiceActivity()
    events: list[VadEvent] = []
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=48_000, frame_size=960)
    with av.open(str(clip)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                events += vad.push(ds.push_frame(out))
    events += vad.flush()
    assert_alternating(events)
    live = list(zip(events[::2], events[1::2], strict=True))
    assert len(live) == len(offline) >= 1
    for (start, end), (s_ev, e_ev) in zip(offline, live, strict=True):
        assert s_ev.t == pytest.approx(start, abs=0.1)
        assert e_ev.t == pytest.approx(end, abs=0.1)
