from __future__ import annotations

import torch

from avatar_agent.affect.features import N_MELS, VOICE_DIM, VOICE_FRAMES
from avatar_agent.affect.train import assign_folds, spec_augment


def test_spec_augment_masks_one_short_span_and_a_few_bands_per_window() -> None:
    voice = torch.ones(64, VOICE_FRAMES, VOICE_DIM)
    spec_augment(voice, torch.Generator().manual_seed(0))
    masked_any = False
    for w in voice:
        zero_rows = (w == 0).all(dim=1)
        assert int(zero_rows.sum()) <= 30
        if zero_rows.any():  # the masked rows are one contiguous span
            idx = torch.nonzero(zero_rows).flatten()
            assert int(idx[-1] - idx[0]) + 1 == len(idx)
        kept = w[~zero_rows]
        zero_cols = (kept == 0).all(dim=0)
        assert int(zero_cols.sum()) <= 4
        assert not zero_cols[N_MELS:].any()  # pitch, voicing and energy are not band-masked
        masked_any |= bool(zero_rows.any() or zero_cols.any())
    assert masked_any
    again = torch.ones(64, VOICE_FRAMES, VOICE_DIM)
    spec_augment(again, torch.Generator().manual_seed(0))
    assert torch.equal(voice, again)  # a seed gives the same masks


def test_folds_split_speakers_and_mix_corpora() -> None:
    speakers = [f"ravdess:{i:02d}" for i in range(1, 21)] + [f"emodb:{i}" for i in range(10)]
    folds = assign_folds(speakers)
    assert set(folds) == set(speakers) and set(folds.values()) == set(range(5))
    for k in range(5):
        members = [s for s, f in folds.items() if f == k]
        assert {s.split(":")[0] for s in members} == {"ravdess", "emodb"}
        assert len(members) == 6


def test_short_baselines_come_from_other_clips_of_the_same_speaker() -> None:
    import random
    from pathlib import Path

    import numpy as np

    from avatar_agent.affect.dataset import ClipFeatures
    from avatar_agent.affect.features import VOICED_COL
    from avatar_agent.affect.labels import parse_label
    from avatar_agent.affect.train import short_bases

    clips = []
    for actor, offset in (("01", 0.0), ("02", 100.0)):
        for rep in range(1, 6):
            label = parse_label(Path(f"03-01-0{rep}-01-01-01-{actor}.flac"))
            assert label is not None
            rows = np.full((150, VOICE_DIM), offset + rep, np.float32)  # 1.5 s, all voiced
            rows[:, VOICED_COL] = 1.0
            clips.append(ClipFeatures(Path(f"{actor}-{rep}"), label, rows, None))
    bases = short_bases(clips, random.Random(0), k=1)
    assert len(bases) == len(clips)
    for clip, base in zip(clips, bases, strict=True):
        assert base.voice is not None and base.face is None
        own = float(clip.voice[0, 0]) if clip.voice is not None else None
        picked = float(base.voice.mean[0])
        assert picked != own  # never the clip being scored
        assert (picked >= 100.0) == (own is not None and own >= 100.0)  # same speaker
    three = short_bases(clips, random.Random(0), k=3)
    assert all(b.voice is not None and b.voice.seconds == 4.5 for b in three)


def test_speech_embeddings_follow_the_window_end_and_feed_the_baseline() -> None:
    from pathlib import Path

    import numpy as np

    from avatar_agent.affect.dataset import (
        ClipFeatures,
        speaker_baseline,
        speech_ends,
        window_at,
    )
    from avatar_agent.affect.features import VOICED_COL
    from avatar_agent.affect.labels import parse_label
    from avatar_agent.perception.speech_embedding import EMBED_DIM

    assert np.allclose(speech_ends(1.5), [1.5])  # short clip: one window, padded
    assert np.allclose(speech_ends(2.5), [2.0, 2.2, 2.4, 2.5])
    label = parse_label(Path("03-01-05-01-01-01-01.flac"))
    assert label is not None
    rows = np.zeros((250, VOICE_DIM), np.float32)
    rows[:, VOICED_COL] = 1.0
    ends = speech_ends(2.5)
    speech = np.repeat(np.arange(len(ends), dtype=np.float32)[:, None], EMBED_DIM, axis=1)
    clip = ClipFeatures(Path("c"), label, rows, None, None, speech, ends)
    base = speaker_baseline([clip])
    assert base.speech is not None and np.allclose(base.speech, speech.mean())
    for end, k in ((2.0, 0), (2.3, 1), (2.45, 2), (2.5, 3)):
        w = window_at(clip, base, end)
        assert w.has_speech and w.speech is not None and w.speech[0] == k  # newest, not future
    no_speech = ClipFeatures(Path("d"), label, rows, None)
    assert not window_at(no_speech, speaker_baseline([no_speech]), 2.5).has_speech
