"""What a browser's voice processing does to the levels the affect model reads.

    .venv/bin/python scripts/measure_browser_audio.py [--speaker 03] [--clips 6]

The customer page asks for the microphone with `audio: true`, so Chromium applies
its echo cancellation, noise suppression and automatic gain control before the call
hears anything; the affect model was trained on recordings without them. This
chains one EmoDB speaker's neutral clips and then their angry ones (0.6 s apart; or
angry first, `--angry-first`) into
Chromium's fake microphone, captures what `getUserMedia` gives the page for the
whole file, once as the page asks and once with gain control and noise suppression
off, aligns each capture with the file, and prints every clip's level (dBFS) as
recorded and as captured. Needs Debian's chromium and the `test` extra (playwright).
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import os
import tempfile
import threading
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
from playwright.sync_api import sync_playwright
from scipy.signal import fftconvolve

from avatar_agent.affect.labels import is_media, parse_label
from avatar_agent.perception.audio import load_audio

REPO = Path(__file__).resolve().parents[1]
RATE = 48000
CHROMIUM = os.environ.get("AVATAR_AGENT_CHROMIUM", "/usr/bin/chromium")
F32 = npt.NDArray[np.float32]
MODES = {  # as the customer page asks (customer.js), and with the two level changers off
    "page": "true",
    "agc+ns off": "{echoCancellation: true, autoGainControl: false, noiseSuppression: false}",
}
PAGE = """<!doctype html><script>
window.capture = async (seconds) => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: %s});
  const ctx = new AudioContext({sampleRate: %d});
  const proc = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  proc.onaudioprocess = (e) => chunks.push(Array.from(e.inputBuffer.getChannelData(0)));
  ctx.createMediaStreamSource(stream).connect(proc);
  proc.connect(ctx.destination);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stream.getTracks().forEach((t) => t.stop());
  const pcm = new Float32Array(chunks.flat());
  let s = ""; const b = new Uint8Array(pcm.buffer);
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
};
</script>"""


def build(emodb: Path, speaker: str, n: int,
          angry_first: bool) -> tuple[F32, list[tuple[str, int, int]]]:
    """Neutral clips then angry ones (or the other way), each with (emotion, first,
    end sample); labels read from the file names as training reads them."""
    by_emotion: dict[str, list[Path]] = {"neutral": [], "angry": []}
    for p in sorted(emodb.iterdir()):
        label = parse_label(p) if is_media(p) else None
        if label and label.speaker == f"emodb:{speaker}" and label.emotion in by_emotion:
            by_emotion[label.emotion].append(p)
    gap = np.zeros(int(0.6 * RATE), np.float32)
    parts, marks, at = [], [], 0
    order = ["angry", "neutral"] if angry_first else ["neutral", "angry"]
    for name in order:
        for p in by_emotion[name][:n]:
            x = load_audio(p, RATE)[0].astype(np.float32)
            parts += [x, gap]
            marks.append((name, at, at + x.size))
            at += x.size + gap.size
    if not marks:
        raise SystemExit(f"no EmoDB clips of speaker {speaker} in {emodb}")
    return np.concatenate(parts), marks


def capture(wav: Path, constraints: str, seconds: float) -> F32:
    page = PAGE % (constraints, RATE)
    handler = functools.partial(_Page, page.encode())
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # any free port
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}"])
            tab = b.new_page()
            tab.goto(f"http://127.0.0.1:{port}/")
            data = tab.evaluate("(s) => window.capture(s)", seconds)
            b.close()
    finally:
        srv.shutdown()
    return np.frombuffer(base64.b64decode(data), np.float32)


class _Page(http.server.BaseHTTPRequestHandler):
    def __init__(self, body: bytes, *args: object) -> None:
        self.body = body
        super().__init__(*args)  # type: ignore[arg-type]

    def do_GET(self) -> None:  # noqa: N802 (the handler's API)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def align(played: F32, got: F32) -> F32:
    """The capture from where the (looping) fake microphone started the file."""
    def env(z: F32) -> F32:
        return np.convolve(np.abs(z), np.ones(480) / 480, "same")[::48].astype(np.float32)
    a, b = env(played), env(got)
    lag = int(np.argmax(fftconvolve(b - b.mean(), (a - a.mean())[::-1], "full")))
    start = ((lag - (a.size - 1)) * 48) % played.size
    out = np.zeros_like(played)
    tail = got[start:start + played.size]
    out[:tail.size] = tail
    return out


def db(x: F32) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--speaker", default="03")
    ap.add_argument("--clips", type=int, default=6, help="of each emotion")
    ap.add_argument("--angry-first", action="store_true", help="the call starts angry")
    args = ap.parse_args()
    played, marks = build(args.data / "speech_emotion" / "emodb", args.speaker, args.clips,
                          args.angry_first)
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "mic.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((np.clip(played, -1, 1) * 32767).astype("<i2").tobytes())
        seconds = played.size / RATE + 2.0
        got = {m: align(played, capture(wav, c, seconds)) for m, c in MODES.items()}
    print(f"{'clip':>4} {'emotion':<8} {'file dB':>8} " + " ".join(f"{m:>12}" for m in got))
    for i, (name, a, b) in enumerate(marks):
        ref = db(played[a:b])
        cells = " ".join(f"{db(g[a:b]) - ref:>+12.1f}" for g in got.values())
        print(f"{i + 1:>4} {name:<8} {ref:>8.1f} {cells}")
    print("(captured minus file, dB; first clip starts the call)")


if __name__ == "__main__":
    main()
