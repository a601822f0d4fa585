"""The configuration sections of what the avatar says and how it yields: its voice,
its reply layers and wordings, and barge-in. Part of `core.config`'s one tree."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from avatar_agent.core.section import Section


class TTSConfig(Section):
    engine: str = Field("piper", pattern="^piper$")
    speed: float = Field(1.0, ge=0.5, le=2.0)
    greeting: str = Field(
        "Hello, I am the virtual support assistant. How can I help you today?",
        min_length=1,
        max_length=1000,
    )


ReplyLayer = Literal["soothe", "confirm", "solve", "repair"]

# Phrases a reply template may never contain: they dismiss the customer's feeling
# instead of acknowledging it. Compared case-insensitively, whitespace folded.
BANNED_REPLY_PHRASES = ("calm down", "relax", "don't be upset", "no need to be upset")


class LevelReplies(Section):
    """What the avatar says to a customer at one level: the layers in order, and their
    wordings. Each layer lists several variants; a call rotates through them."""

    layers: list[ReplyLayer] = Field(min_length=1)
    # Used instead of `soothe` during the first `replies.acknowledge_s` at this level.
    acknowledge: list[str] = Field(default_factory=list)
    soothe: list[str] = Field(default_factory=list)
    confirm: list[str] = Field(default_factory=list)
    solve: list[str] = Field(default_factory=list)
    repair: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _filled(self) -> LevelReplies:
        for layer in self.layers:
            if not getattr(self, layer):
                raise ValueError(f"layer {layer!r} is used but has no templates")
        for name in ("acknowledge", "soothe", "confirm", "solve", "repair"):
            for text in getattr(self, name):
                folded = " ".join(text.lower().split())
                if not folded:
                    raise ValueError(f"an empty {name} template")
                for phrase in BANNED_REPLY_PHRASES:
                    if phrase in folded:
                        raise ValueError(f"{name} template {text!r} contains {phrase!r}")
        return self


class RepliesConfig(Section):
    # Reply when the customer finishes a turn (voice activity only: there is no
    # speech recognition, so the reply follows the level, not the words).
    auto: bool = True
    min_turn_s: float = Field(0.8, ge=0, le=30)  # shorter bursts (a cough, "mm") get no reply
    pause_s: float = Field(0.4, ge=0, le=5)  # silence after the turn before the avatar answers
    acknowledge_s: float = Field(30.0, ge=0, le=600)  # how long `acknowledge` replaces `soothe`
    # Voice this long starts a customer turn and, while the avatar talks, stops it
    # (barge-in): short, so the avatar yields within 200 ms of the customer's first word.
    speech_start_s: float = Field(0.064, ge=0.03, le=2)
    calm: LevelReplies = LevelReplies(
        layers=["confirm", "solve"],
        confirm=["Sure.", "Got it.", "Of course."],
        solve=[
            "Let me look into that for you right away.",
            "I can help with that; give me a moment to check.",
            "I'm checking your account now.",
        ],
    )
    dissatisfied: LevelReplies = LevelReplies(
        layers=["soothe", "confirm", "solve"],
        soothe=[
            "I'm sorry this has been a hassle.",
            "I'm sorry for the trouble this has caused you.",
            "I apologise, that should not have happened.",
        ],
        confirm=[
            "So the problem is still not solved for you.",
            "Let me make sure I understand what went wrong.",
            "I see what you mean.",
        ],
        solve=[
            "Here is what I will do to fix it now.",
            "I'm taking care of this for you right now.",
            "Let me sort this out for you straight away.",
        ],
    )
    furious: LevelReplies = LevelReplies(
        layers=["soothe", "confirm", "solve", "repair"],
        acknowledge=[
            "I can hear how frustrating this is for you.",
            "I understand why you are angry, and you have every right to be.",
            "I can tell this has been really upsetting.",
        ],
        soothe=[
            "I'm truly sorry for all of this.",
            "I'm very sorry we let you down.",
            "I apologise for the trouble we have caused you.",
        ],
        confirm=[
            "You have waited too long, and the problem is still there.",
            "This should have been solved the first time.",
            "Let me make sure I have this right.",
        ],
        solve=[
            "I'm making this my priority right now.",
            "Here is what I am doing to fix it, right now.",
            "I will stay with you until this is solved.",
        ],
        repair=[
            "Thank you for your patience with us.",
            "I appreciate you giving us the chance to put this right.",
            "We value you as a customer, and we will do better.",
        ],
    )


VAD_CONFIRM_S = 0.1  # look-ahead of voice activity beyond its minimum speech length


class BargeInConfig(Section):
    # "Duck, then decide": a sudden rise of the customer's level while the avatar talks
    # holds it at once (silent, nothing lost); voice activity confirming speech within
    # `confirm_s` makes it a barge-in, otherwise the avatar resumes where it stopped.
    hold: bool = True  # false: only voice activity stops the avatar (slower, no resume)
    onset_rise_db: float = Field(15.0, ge=3, le=40)  # over the adaptive noise floor
    onset_min_dbfs: float = Field(-65.0, ge=-90, le=-10)  # and never quieter than this
    onset_frames: int = Field(2, ge=1, le=10)  # 20 ms frames in a row
    # Voice activity needs replies.speech_start_s of speech plus its own ~0.1 s of
    # look-ahead to confirm, so this must be longer than that (checked below).
    confirm_s: float = Field(0.4, ge=0.1, le=2)
    resume_lead_s: float = Field(0.06, ge=0, le=1)  # silence before the held speech resumes
