"""The avatar of one call as seen from the media clock: what to show and say at time t."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from avatar_agent.avatar.animator import IdleAnimator, Pose
from avatar_agent.speech.playout import Playout, SpeechEvent


class AvatarStream:
    """Audio and video of the avatar, both addressed by position on one timeline.

    Video asks for the pose at a frame's presentation time; audio reads samples.
    The mouth in the pose comes from the same playout the audio is read from.
    """

    def __init__(
        self,
        render: Callable[[Pose], npt.NDArray[np.uint8]],
        animator: IdleAnimator,
        playout: Playout,
    ) -> None:
        self.render = render  # heavy: the transport runs it in an executor
        self.animator = animator
        self.playout = playout

    @property
    def rate(self) -> int:
        return self.playout.rate

    def pose_at(self, t: float) -> Pose:
        mouth = self.playout.mouth_at(round(t * self.rate))
        return self.animator.pose(t, mouth)

    def audio(self, start: int, n: int) -> tuple[npt.NDArray[np.int16], list[SpeechEvent]]:
        return self.playout.read(start, n)
