"""Training-time changes to raw voice rows, so the model cannot lean on what differs
between microphones and moments rather than between emotions.

Each works in place on a batch of raw rows (B, T, VOICE_DIM), drawn from a seeded
torch generator so a training run is repeatable.
"""

from __future__ import annotations

import math

import torch

from avatar_agent.perception.features import ENERGY_COL, N_MELS, SILENCE_DB, VOICED_COL

GAIN_DB = 10.0  # training varies the level of each voice window by up to this


def vary_gain(voice: torch.Tensor, gen: torch.Generator) -> None:
    """Shift the level (mel bands and energy, dB) of each window by a random amount:
    microphones differ, and the first answer must not hang on one."""
    gain = (torch.rand(voice.shape[0], 1, generator=gen) * 2 - 1) * GAIN_DB
    live = voice[:, :, ENERGY_COL] > SILENCE_DB + 1
    voice[:, :, :N_MELS] += (gain * live)[:, :, None]
    voice[:, :, ENERGY_COL] += gain * live


def spec_augment(voice: torch.Tensor, gen: torch.Generator) -> None:
    """Mask one span of up to 0.3 s and one run of up to 4 mel bands per window, so
    the model cannot lean on one moment or one band of a voice it has heard. A masked
    value is NaN, which the model reads as the mean it compares against; the voicing
    flags stay as they are."""
    b, t, _ = voice.shape
    for i in range(b):
        width = int(torch.randint(0, 31, (1,), generator=gen))
        start = int(torch.randint(0, t - width + 1, (1,), generator=gen))
        voice[i, start : start + width, :VOICED_COL] = math.nan
        voice[i, start : start + width, VOICED_COL + 1 :] = math.nan
        bands = int(torch.randint(0, 5, (1,), generator=gen))
        low = int(torch.randint(0, N_MELS - bands + 1, (1,), generator=gen))
        voice[i, :, low : low + bands] = math.nan
