"""Prometheus metrics of one server, in their own registry (tests start many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from avatar_agent.core.threadcpu import PoolCpuCollector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        r.register(PoolCpuCollector())  # CPU by stage: each stage has its own pool
        self.calls_live = Gauge("avatar_agent_calls_live", "Calls in progress", registry=r)
        self.call_capacity = Gauge(
            "avatar_agent_call_capacity",
            "Calls this server admits at once (max_calls, or its CPU budget if lower)",
            registry=r)
        self.call_headroom = Gauge(
            "avatar_agent_call_headroom", "Calls that may still start before new ones get 503",
            registry=r)
        self.calls_ended = Counter(
            "avatar_agent_calls_ended", "Calls ended, by reason", ["reason"], registry=r
        )
        self.frames_in = Counter(
            "avatar_agent_frames_in", "Customer media frames received", ["kind"], registry=r
        )
        self.frames_out = Counter(
            "avatar_agent_frames_out", "Avatar media frames sent", ["kind"], registry=r
        )
        self.frames_dropped = Counter(
            "avatar_agent_frames_dropped",
            "Frames dropped so media never waits (where: receive = replaced before analysis, "
            "send = skipped because producing them fell behind the clock, shed = not analysed "
            "because the avatar's media was behind)",
            ["kind", "where"],
            registry=r,
        )
        self.frames_analysed = Counter(
            "avatar_agent_frames_analysed",
            "Customer frames analysed (face) or audio hops analysed (voice)",
            ["kind"],
            registry=r,
        )
        self.events_dropped = Counter(
            "avatar_agent_events_dropped",
            "Data-channel events to customers dropped (channel not open, or backlogged)",
            registry=r,
        )
        self.customer_speech = Counter(
            "avatar_agent_customer_speech_events",
            "Customer speech starts and ends found by voice activity detection",
            ["event"],
            registry=r,
        )
        self.video_encoders = Counter(
            "avatar_agent_video_encoders",
            "Avatar video streams started, by encoder (avatar_vp8: tuned for a drawn "
            "picture; aiortc: its own, for codecs other than VP8; aiortc_unstamped: its own, "
            "with send-time sender reports, where aiortc keeps its sender state elsewhere)",
            ["encoder"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "avatar_agent_stage_seconds",
            "Latency of each processing stage",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.affect_windows = Counter(
            "avatar_agent_affect_windows",
            "Affect windows submitted by calls, by outcome",
            ["outcome"],
            registry=r,
        )
        self.stage_failures = Counter(
            "avatar_agent_stage_failures",
            "Steps of a call's stage that raised and were skipped (the call went on)",
            ["stage"],
            registry=r,
        )
        self.affect_batch_size = Histogram(
            "avatar_agent_affect_batch_size",
            "Windows per forward pass of the shared affect model",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        # Export every series from the start, so dashboards see zeros instead of gaps.
        for kind in ("video", "audio"):
            self.frames_in.labels(kind)
            self.frames_out.labels(kind)
            for where in ("receive", "send"):
                self.frames_dropped.labels(kind, where)
        self.frames_dropped.labels("video", "shed")
        for kind in ("face", "voice"):
            self.frames_analysed.labels(kind)
        for encoder in ("avatar_vp8", "aiortc", "aiortc_unstamped"):
            self.video_encoders.labels(encoder)
        for event in ("speech_start", "speech_end"):
            self.customer_speech.labels(event)
        for outcome in ("ok", "failed"):
            self.affect_windows.labels(outcome)
        for stage in ("face", "voice", "speech_embedding", "voice_activity", "affect", "cues",
                      "tts", "render"):
            self.stage_failures.labels(stage)
        for stage in ("call_setup", "render", "tts_sentence", "face", "voice",
                      "speech_embedding", "affect", "asr", "answer"):
            self.stage_seconds.labels(stage)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
