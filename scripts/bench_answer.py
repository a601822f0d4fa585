"""End of the customer's turn -> first audio of a knowledge answer, in its parts.

The sentences that open answers (each entry's confirmation, "I can't answer", ...)
are synthesized at start-up by the server (``Runtime.preload_answers``), so a calm
customer's answer waits for no synthesis: ``tts_first`` counts 0 for those, and
``tts_uncached`` shows what synthesizing the same sentence would cost.

Run with ``python scripts/bench_answer.py [--data ../shared/data] [--turns 40]``.

Real turns (RAVDESS statements, every actor) are transcribed as a call does it
(``Transcriber``, int8, turn-sized context), matched against the example knowledge
base, and the reply's first sentence is synthesized with the call's voice (Piper).
In a call the recognition starts when voice activity reports the end of the turn
(``VAD_END_S`` after the last word) and runs while the avatar waits
``replies.pause_s``; the first answer audio leaves ``SPEECH_LEAD_S`` after its
first sentence is synthesized. So, per turn:

    end of turn -> first audio = VAD_END_S + max(pause_s, ASR) + retrieval
                                 + TTS first sentence + SPEECH_LEAD_S

Also prints how well the example knowledge base separates paraphrases of its
questions from unrelated questions (top-1 accuracy, scores) at ``knowledge.min_score``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from avatar_agent.core.config import PROJECT_ROOT, Config
from avatar_agent.perception.audio import load_audio
from avatar_agent.speech.answers import KnowledgeAnswerer
from avatar_agent.speech.asr import Transcriber
from avatar_agent.speech.call_speech import SPEECH_LEAD_S
from avatar_agent.speech.knowledge import load_knowledge
from avatar_agent.speech.replies import ReplyComposer
from avatar_agent.speech.tts import PiperTTS

VAD_END_S = 0.3  # run_voice_activity's min_silence_s: the end is known this late
PARAPHRASES = [
    ("where's my order", "order-status"), ("I'd like my money back please", "refund"),
    ("my password isn't working", "reset-password"), ("the box came broken", "damaged-item"),
    ("我的订单到哪了", "order-status"), ("when do you open on saturday", "opening-hours"),
    ("my parcel hasn't come", "order-status"), ("I was billed two times", "charged-twice"),
    ("how long will shipping take", "delivery-time"), ("can I pay by card", "payment-methods"),
    ("我想退款", "refund"), ("密码忘了", "reset-password"),
    ("I need to send this back", "return-item"), ("how much is delivery", "delivery-cost"),
    ("I want to cancel", "cancel-order"), ("什么时候开门", "opening-hours"),
    ("can I return this", "return-item"), ("my package arrived damaged", "damaged-item"),
]
UNRELATED = ["what's the weather like tomorrow", "I'd like to buy a car", "今天天气怎么样",
             "my cat is sick", "tell me a joke", "我喜欢吃苹果", "what is the meaning of life",
             "who won the football game", "can you sing a song", "我今天很累"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--compute-type", default="int8")
    args = parser.parse_args()
    cfg = Config()
    print(f"cpus: {os.cpu_count()}  load average: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    entries = load_knowledge(PROJECT_ROOT / "configs" / "knowledge" / "example.yaml")
    kb = KnowledgeAnswerer(entries, cfg.knowledge.min_score)
    top1 = sum(kb.index.best(q).entry.id == want for q, want in PARAPHRASES)  # type: ignore[union-attr]
    kept = sum(kb.decide(q).kind == "answer" for q, _ in PARAPHRASES)
    wrong = sum(kb.decide(q).kind == "answer" for q in UNRELATED)
    print(f"knowledge: paraphrases top-1 {top1}/{len(PARAPHRASES)}, answered at min_score "
          f"{cfg.knowledge.min_score}: {kept}/{len(PARAPHRASES)}; unrelated questions "
          f"answered anyway: {wrong}/{len(UNRELATED)}")

    asr = Transcriber.load(compute_type=args.compute_type)
    tts = PiperTTS(speed=cfg.tts.speed)
    composer = ReplyComposer(cfg.replies, "bench")
    clips = sorted((args.data / "speech_emotion/ravdess_full").glob("Actor_*/*.flac"))
    clips = clips[:: max(1, len(clips) // args.turns)][: args.turns]
    asr.transcribe(load_audio(clips[0])[0])
    next(iter(tts.sentences("Warming up.")))
    parts: dict[str, list[float]] = {"asr": [], "retrieval": [], "tts_uncached": [],
                                     "tts_first": [], "total": []}
    preloaded = {*kb.confirmations(), cfg.answer.unanswered, cfg.answer.handoff,
                 cfg.answer.not_heard}
    for clip in clips:
        audio, _ = load_audio(clip)
        out = asr.transcribe(audio)
        t0 = time.perf_counter()
        answer = kb.decide(out.text)
        reply = composer.compose_answer("calm", 0.0, answer, cfg.answer)
        retrieval = time.perf_counter() - t0
        t0 = time.perf_counter()
        next(iter(tts.sentences(reply[0].text)))
        first = time.perf_counter() - t0
        parts["tts_uncached"].append(first)
        if reply[0].text in preloaded:
            first = 0.0  # synthesized at start-up (Runtime.preload_answers)
        total = VAD_END_S + max(cfg.replies.pause_s, out.compute_s) + retrieval + first \
            + SPEECH_LEAD_S
        for key, value in (("asr", out.compute_s), ("retrieval", retrieval),
                           ("tts_first", first), ("total", total)):
            parts[key].append(value)
        print(f"  {clip.name}: {out.text!r} -> {answer.kind} {answer.entry_id}", file=sys.stderr)
    for key, values in parts.items():
        print(f"{key:>10}: median {statistics.median(values):.3f} s, "
              f"max {max(values):.3f} s over {len(values)} turns")
    print(f"(total = {VAD_END_S} s VAD end + max(pause {cfg.replies.pause_s} s, ASR) "
          f"+ retrieval + TTS first sentence + {SPEECH_LEAD_S} s lead)")


if __name__ == "__main__":
    main()
