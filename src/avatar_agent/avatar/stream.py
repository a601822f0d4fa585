"""The avatar of one call as seen from the media clock: what to show and say at time t."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from avatar_agent.avatar.animator import CueAnimator, IdleAnimator, Pose
from avatar_agent.avatar.behavior import CueTargets
from avatar_agent.speech.playout import Playout, PlayoutEvent


class AvatarStream:
    """Audio and video of the avatar, both addressed by position on one timeline.

    Video asks for the pose at a frame's presentation time; audio reads samples.
    The mouth in the pose comes from the same playout the audio is read from; the
    rest of the pose follows the cue targets set by the call's cue loop.
    """

    def __init__(
        self,
        render: Callable[[Pose], npt.NDArray[np.uint8]],
        animator: CueAnimator | IdleAnimator,
        playout: Playout,
    ) -> None:
        self.render = render  # heavy: the transport runs it in an executor
        self.animator = animator
        self.playout = playout

    @property
    def rate(self) -> int:
        return self.playout.rate

    @property
    def targets(self) -> CueTargets:
        """The current cue targets; the speech side reads `targets.speech_rate`."""
        if isinstance(self.animator, CueAnimator):
            return self.animator.targets
        return CueTargets()

    def set_targets(self, targets: CueTargets) -> None:
        if not isinstance(self.animator, CueAnimator):
            raise TypeError("this stream's animator has no cues")
        self.animator.set_targets(targets)

    def pose_at(self, t: float) -> Pose:
        mouth = self.playout.mouth_at(round(t * self.rate))
        return self.animator.pose(t, mouth)

    def render_i420(self, pose: Pose) -> npt.NDArray[np.uint8]:
        """The frame as planar YUV 4:2:0, what the video encoder wants.

        OpenCV converts in about 1 ms; left to the encoder, the same conversion
        costs several times that on the encoder's thread.
        """
        rgb = self.render(pose)
        return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)

    def audio(self, start: int, n: int) -> tuple[npt.NDArray[np.int16], list[PlayoutEvent]]:
        return self.playout.read(start, n)
