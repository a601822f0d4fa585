"""One typed configuration tree, loaded from YAML and validated strictly.

Every section rejects unknown keys, so a typo in a YAML file is an error with its path
instead of a setting that silently does nothing. The defaults here are the embedded
defaults; `configs/default.yaml` spells them out and a test keeps the two equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from avatar_agent.core.config_speech import VAD_CONFIRM_S, BargeInConfig, RepliesConfig, TTSConfig
from avatar_agent.core.section import Section
from avatar_agent.core.yamlconfig import ConfigError as ConfigError  # for its many importers
from avatar_agent.core.yamlconfig import parse_yaml_model, read_text

# Where relative asset paths in the config (model, persona) are taken from.
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def project_path(value: str) -> Path:
    """A path from the config; a relative one is taken from the project root."""
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


class IceServer(Section):
    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: str | None = None


class TurnConfig(Section):
    """A TURN server (coturn with `use-auth-secret`) for customers whose networks block
    UDP: the page gets credentials that expire after `ttl_s` (core/turn.py)."""

    urls: list[str] = Field(min_length=1)  # e.g. turns:turn.example.com:5349?transport=tcp
    secret: str = Field(min_length=16)  # coturn's static-auth-secret
    ttl_s: float = Field(3600.0, ge=60, le=86400)


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Offers are a few KiB; anything larger is a mistake or an attack.
    max_body_bytes: int = Field(65536, ge=1024, le=1_048_576)
    max_calls: int = Field(20, ge=1, le=1000)
    # Calls at full quality: (this machine's cores, or `cores`) x `utilisation` over the
    # CPU one full call takes (`call_cores`, measured by scripts/bench_capacity.py), at
    # most max_calls. Past it a new customer gets 503 with Retry-After (the page says the
    # lines are busy) instead of every call dropping frames. null: max_calls alone.
    call_cores: float | None = Field(0.9, gt=0, le=64)
    cores: float | None = Field(None, gt=0, le=1024)
    utilisation: float = Field(0.85, gt=0, le=1)
    # Given to the browser page and to the server's own peer; empty means host candidates only.
    ice_servers: list[IceServer] = Field(default_factory=list)
    # A TURN server whose time-limited credentials the page gets with each load.
    turn: TurnConfig | None = None
    # Admission: the page gets a single-use join token (POST /api/join) valid this long
    # and sends it with its offer. Per client (its address, or the one a trusted proxy
    # forwards): this many join requests and offers a minute (in bursts of up to 10 s
    # worth, at least 5), this many calls at once, and this many that have not
    # connected yet. Calls not yet connected may also take only `max_half_open` of the
    # server's `max_calls`.
    join_token_ttl_s: float = Field(60.0, gt=0, le=600)
    joins_per_client_per_min: float = Field(12.0, gt=0, le=6000)
    max_calls_per_client: int = Field(4, ge=1, le=1000)
    max_half_open_per_client: int = Field(2, ge=1, le=1000)
    max_half_open: int = Field(10, ge=1, le=1000)
    # Proxies whose X-Forwarded-For names the client (exact addresses); empty: none.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Access-log lines carry no client address unless this is on (privacy by default).
    access_log_client_ip: bool = False
    # /metrics: with a token, `Authorization: Bearer <token>` from anywhere; without
    # one, only clients on this machine (a local Prometheus or agent) may read it.
    metrics_token: str | None = Field(None, min_length=16)


class CallConfig(Section):
    # The page sends a heartbeat on the data channel; silence this long means the
    # customer's network or browser is gone, and the call is ended.
    heartbeat_timeout_s: float = Field(10.0, gt=0, le=300)
    # Upper bound on a call with no live connection at all (ICE never completed).
    connect_timeout_s: float = Field(30.0, gt=0, le=300)
    # Remote ICE candidates one offer may list: the server checks each one (sends it
    # STUN), so an offer must not name hundreds of addresses for it to probe.
    max_remote_candidates: int = Field(32, ge=1, le=500)


class AvatarConfig(Section):
    name: str = "default"
    width: int = Field(640, ge=160, le=1920)
    height: int = Field(480, ge=120, le=1080)
    fps: int = Field(30, ge=5, le=60)
    # Persona rules (configs/behaviors/); reloaded while calls run when the file changes.
    behavior: str = "configs/behaviors/support.yaml"

    @field_validator("width", "height")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (yuv420p video)")
        return v


class PerceptionConfig(Section):
    # Face analysis rate per call; frames in between are dropped (latest frame wins).
    # 10/s is the rate the affect model's face features are built at (features.FACE_HZ);
    # 15/s cost half as much again in face mesh per call for features it resamples anyway.
    face_fps: float = Field(10.0, gt=0, le=60)
    # Seconds of features each call keeps for the affect stage.
    ring_seconds: float = Field(10.0, ge=2, le=120)


class LevelConfig(Section):
    """Customer level from the smoothed anger index, with hysteresis and a minimum dwell."""

    # enter a level when the index reaches its `enter`, leave it when it falls below `exit`
    dissatisfied_enter: float = Field(40.0, ge=0, le=100)
    dissatisfied_exit: float = Field(30.0, ge=0, le=100)
    furious_enter: float = Field(70.0, ge=0, le=100)
    furious_exit: float = Field(58.0, ge=0, le=100)
    min_dwell_s: float = Field(3.0, ge=0, le=120)  # a level is held at least this long

    @model_validator(mode="after")
    def _ordered(self) -> LevelConfig:
        if not self.dissatisfied_exit < self.dissatisfied_enter:
            raise ValueError("dissatisfied_exit must be below dissatisfied_enter")
        if not self.furious_exit < self.furious_enter:
            raise ValueError("furious_exit must be below furious_enter")
        if not self.dissatisfied_enter < self.furious_enter:
            raise ValueError("dissatisfied_enter must be below furious_enter")
        return self


class AffectConfig(Section):
    model: str = "assets/models/affect.pt"  # relative paths are taken from the project root
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")  # auto = CUDA when present
    max_batch: int = Field(64, ge=1, le=1024)
    max_wait_ms: float = Field(5.0, ge=0, le=200)
    rate_hz: float = Field(4.0, ge=2, le=20)  # affect updates per call per second
    smoothing_s: float = Field(1.0, ge=0, le=30)  # time constant of the output smoothing
    level: LevelConfig = LevelConfig()
    # A YAML list of timed affect steps that replaces the model (demos, persona tuning,
    # tests); see affect/script.py. Relative paths are taken from the working directory.
    script: str | None = None


class StorageConfig(Section):
    # Any SQLAlchemy URL; a relative SQLite path is relative to the working directory.
    url: str = "sqlite:///var/avatar-agent.db"


class BusConfig(Section):
    """Where live events (affect, escalations, transcripts, ...) travel between workers."""

    # redis://host:port/db: every worker publishes on, and hears, one channel. Unset:
    # in-process, for a single server.
    url: str | None = Field(None, pattern=r"^rediss?://")
    channel: str = Field("avatar-agent:events", min_length=1, max_length=128)
    # events waiting while Redis is away; past this the oldest are dropped
    max_pending: int = Field(10000, ge=100, le=1_000_000)


class ClusterConfig(Section):
    """This server as one worker of several on one database (and one bus)."""

    # Unique and stable across restarts (e.g. host-port): a restarted worker ends only
    # its own calls left open. Unset: a single server, which ends every call left open.
    worker_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    address: str = ""  # where the front and the other workers reach it (http://host:port)
    heartbeat_s: float = Field(5.0, gt=0, le=60)  # how often it says it is alive
    # silent this long: lost; another worker ends its calls with reason worker_lost
    lost_after_s: float = Field(20.0, gt=0, le=300)

    @model_validator(mode="after")
    def _lost_after_beats(self) -> ClusterConfig:
        if self.lost_after_s < 2 * self.heartbeat_s:
            raise ValueError("cluster.lost_after_s must be at least twice heartbeat_s: one "
                             "late heartbeat must not end a live worker's calls")
        return self


class OperatorsConfig(Section):
    token_ttl_h: float = Field(12.0, gt=0, le=24 * 30)  # login tokens expire after this
    # Key that signs login tokens; unset = a random key per server start (logins then
    # do not survive a restart). Set it for several server processes behind one address.
    token_secret: str | None = Field(None, min_length=32)
    # Off: the dashboard never shows the customer's camera. On: it shows it live (never
    # stored) for calls whose customer agreed, and the customer page says so first.
    show_customer_video: bool = False
    customer_video_fps: float = Field(5.0, gt=0, le=30)  # enough to see a face, cheap
    max_say_chars: int = Field(500, ge=1, le=5000)  # longest takeover reply
    # Failed logins back off per name and per client, then lock the name (or client)
    # out for this long; the lock is forgotten this long after the last failure.
    login_lockout_min: float = Field(15.0, gt=0, le=24 * 60)


class EscalationConfig(Section):
    """When a human is needed: sustained anger, fury, or the customer asking for one."""

    anger_threshold: float = Field(45.0, ge=0, le=100)
    hold_s: float = Field(1.0, ge=0, le=600)  # the index stays at or above the threshold this long
    # Which rule raises an escalation for anger: "hold" (the two settings above) or
    # "evidence": the index's excess over evidence_ref, summed over time (index x
    # seconds, never below 0), reaches evidence_needed, so a strong reading escalates
    # sooner than a merely raised one.
    # The defaults are the model card's choice on validation speakers' calls.
    rule: Literal["hold", "evidence"] = "hold"
    evidence_ref: float = Field(30.0, ge=0, le=100)
    evidence_needed: float = Field(150.0, gt=0, le=10000)
    on_furious: bool = True  # the level reaching furious escalates at once
    on_customer_request: bool = True  # "Talk to a person": the page's button, or in words
    on_unanswered: bool = True  # the agent had no answer to what the customer said
    cooldown_s: float = Field(120.0, ge=0, le=3600)  # no second escalation of a call before this


class AsrConfig(Section):
    """Speech recognition of each customer turn (Whisper base, offline, on the CPU)."""

    enabled: bool = True
    language: str = Field("en", pattern="^[a-z]{2,3}$")  # Whisper's code: en, zh, de, ...
    compute_type: Literal["int8", "float32"] = "int8"  # int8 is faster on a CPU
    # The encoder reads the turn and silence up to this long (None: always 30 s, slower).
    min_context_s: float | None = Field(10.0, ge=2, le=30)
    threads: int = Field(1, ge=1, le=16)  # CPU threads of one recognition


class KnowledgeConfig(Section):
    # A YAML list of {id, questions, answer, confirm?, escalate?} (configs/knowledge/);
    # relative paths are taken from the project root. None: no knowledge base.
    path: str | None = "configs/knowledge/example.yaml"
    # Below this similarity (0..1) the agent says it cannot answer and asks for a person.
    min_score: float = Field(0.45, ge=0, le=1)


class AnswerConfig(Section):
    """Who answers the customer's words: the knowledge base (offline), or an
    OpenAI-compatible chat endpoint with the knowledge base as its fallback."""

    backend: Literal["knowledge", "openai"] = "knowledge"
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str | None = "OPENAI_API_KEY"  # the key is read from this variable
    timeout_s: float = Field(4.0, gt=0, le=60)
    # What the agent says when it cannot answer, and when the customer asks for a person.
    unanswered: str = Field(
        "I'm not sure I can answer that myself, so I'm asking a colleague to join us. "
        "Please stay on the line.", min_length=1, max_length=500)
    handoff: str = Field(
        "Of course. I'm asking a colleague to join this call now.",
        min_length=1, max_length=500)
    not_heard: str = Field("Sorry, I didn't catch that. Could you say it again?",
                           min_length=1, max_length=500)


class PrivacyConfig(Section):
    retention_days: float = Field(30.0, gt=0, le=3650)  # curves, events, escalations
    purge_interval_h: float = Field(1.0, gt=0, le=24 * 7)  # how often the purge runs


class Config(Section):
    server: ServerConfig = ServerConfig()
    call: CallConfig = CallConfig()
    avatar: AvatarConfig = AvatarConfig()
    tts: TTSConfig = TTSConfig()
    replies: RepliesConfig = RepliesConfig()
    barge_in: BargeInConfig = BargeInConfig()
    perception: PerceptionConfig = PerceptionConfig()
    affect: AffectConfig = AffectConfig()
    storage: StorageConfig = StorageConfig()
    bus: BusConfig = BusConfig()
    cluster: ClusterConfig = ClusterConfig()
    operators: OperatorsConfig = OperatorsConfig()
    escalation: EscalationConfig = EscalationConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    asr: AsrConfig = AsrConfig()
    knowledge: KnowledgeConfig = KnowledgeConfig()
    answer: AnswerConfig = AnswerConfig()

    @model_validator(mode="after")
    def _speech_can_be_confirmed(self) -> Config:
        least = self.replies.speech_start_s + VAD_CONFIRM_S
        if self.barge_in.hold and self.barge_in.confirm_s < least:
            raise ValueError(
                f"barge_in.confirm_s ({self.barge_in.confirm_s}) must be at least "
                f"replies.speech_start_s + {VAD_CONFIRM_S} ({least:.3f}): otherwise every "
                "hold resumes before voice activity can confirm the customer's speech"
            )
        return self


def parse_config(text: str, source: str = "<string>") -> Config:
    """Validate YAML text; raise ConfigError listing every problem with its path."""
    return parse_yaml_model(Config, text, source)


def load_config(path: Path | None) -> Config:
    """Load a YAML file, or the embedded defaults when path is None."""
    if path is None:
        return Config()
    return parse_config(read_text(path), str(path))
