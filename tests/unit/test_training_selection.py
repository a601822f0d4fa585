from __future__ import annotations

import pytest

from avatar_agent.training.selection import (
    combined,
    paired_difference,
    smoothed_best,
    validation_calls,
    validation_score,
    verdict,
)


def _epoch(score: float) -> dict[str, float]:
    return {"uar": score, "arousal_ba": score, "anger_auc": score, "loss": 1.0}


def test_the_best_epoch_counts_with_its_neighbours_not_alone() -> None:
    # one lucky epoch (0.9) among 0.5s scores no better than a plateau at 0.7
    spike = [_epoch(s) for s in (0.5, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5)]
    plateau = [_epoch(s) for s in (0.5, 0.7, 0.7, 0.71, 0.7, 0.7, 0.5)]
    assert smoothed_best(spike) == pytest.approx((0.5 * 4 + 0.9) / 5)
    assert smoothed_best(plateau) == pytest.approx(0.702)
    assert smoothed_best(plateau) > smoothed_best(spike)
    # near the ends fewer epochs are averaged; ties go to the first best, as in training
    tied = [_epoch(s) for s in (0.8, 0.6, 0.6, 0.6, 0.8, 0.2, 0.2)]
    assert smoothed_best(tied) == pytest.approx((0.8 + 0.6 + 0.6) / 3)
    assert combined({"uar": 0.6, "arousal_ba": 0.9, "anger_auc": 0.9}) == pytest.approx(0.8)


def test_a_run_is_scored_over_every_fold_and_member() -> None:
    report = {"folds": [{"val_history": [[_epoch(0.6)], [_epoch(0.8)]]},
                        {"val_history": [[_epoch(0.7)], [_epoch(0.7)]]}]}
    score, values = validation_score(report)
    assert values == pytest.approx([0.6, 0.8, 0.7, 0.7]) and score == pytest.approx(0.7)
    with pytest.raises(ValueError, match="no validation curves"):
        validation_score({"folds": [{"test": {}}]})
    with pytest.raises(ValueError, match="no validation curves"):
        validation_score({})


def test_runs_are_compared_fold_by_fold_and_member_by_member() -> None:
    base = {"folds": [{"val_history": [[_epoch(0.6)], [_epoch(0.8)]]},
                      {"val_history": [[_epoch(0.7)], [_epoch(0.7)]]}]}
    cand = {"folds": [{"val_history": [[_epoch(0.61)], [_epoch(0.83)]]},
                      {"val_history": [[_epoch(0.69)], [_epoch(0.72)]]}]}
    diff, se, gained, n = paired_difference(base, cand)
    assert diff == pytest.approx(0.0125) and (gained, n) == (3, 4)
    # differences 0.01, 0.03, -0.01, 0.02: sample sd 0.0170782, over sqrt(4)
    assert se == pytest.approx(0.0170782 / 2, rel=1e-4)
    short = {"folds": [{"val_history": [[_epoch(0.6)]]}]}
    with pytest.raises(ValueError, match="same --members"):
        paired_difference(base, short)


def _run(score: float, share: float | None, calm: int = 0) -> dict[str, object]:
    calls = ({} if share is None else {"escalation_policy": {
        "shipped": {"text": "hold: index 45 for 1 s"},
        "shipped_on_validation": {"share_within_10s": share, "calm_escalations": calm}}})
    return {"folds": [{"val_history": [[_epoch(score)]]}], "calls": calls}


def test_a_better_clip_score_is_not_enough_if_fewer_angry_callers_escalate() -> None:
    base = _run(0.80, 0.74)
    assert verdict(base, _run(0.81, 0.75), 0.005)[0]
    assert not verdict(base, _run(0.804, 0.80), 0.005)[0]  # short of the margin
    adopt, why = verdict(base, _run(0.82, 0.30), 0.005)  # ranks clips better, escalates less
    assert not adopt and "74% -> 30%" in why
    adopt, why = verdict(base, _run(0.82, 0.80, calm=1), 0.005)  # a calm caller escalated
    assert not adopt and "calm validation calls escalated 0 -> 1" in why
    assert not verdict(base, _run(0.82, None), 0.005)[0]  # cannot tell: not adopted
    assert validation_calls(_run(0.8, None)) is None
    assert validation_calls(base) == {"policy": "hold: index 45 for 1 s",
                                      "share_within_10s": 0.74, "calm_escalations": 0}
