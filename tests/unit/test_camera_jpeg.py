"""The operator's camera view encodes the same received frames that face analysis reads."""

from __future__ import annotations

import threading

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from avatar_agent.operators.video import encode_jpeg


def _frames(n: int) -> list[av.VideoFrame]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        # decoded WebRTC video arrives as yuv420p
        out.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
    return out


def test_jpeg_decodes_to_the_frame() -> None:
    frame = _frames(1)[0]
    jpeg = encode_jpeg(frame, VideoReformatter())
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (240, 320, 3)
    want = frame.to_ndarray(format="bgr24").astype(np.int16)
    assert float(np.abs(img.astype(np.int16) - want).mean()) < 20.0


def test_encoding_beside_face_analysis_does_not_deadlock() -> None:
    """Both threads converting the same frames through the frame's own cached scaler
    deadlocked the analysis pool within a few frames; daemon threads let the test fail
    instead of hanging."""
    frames = _frames(150)
    done: list[str] = []

    def analysis() -> None:
        for f in frames:
            f.to_ndarray(format="rgb24")
        done.append("analysis")

    def camera() -> None:
        reformatter = VideoReformatter()
        for f in frames:
            encode_jpeg(f, reformatter)
        done.append("camera")

    threads = [threading.Thread(target=analysis, daemon=True),
               threading.Thread(target=camera, daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(done) == ["analysis", "camera"]
