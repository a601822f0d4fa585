"""Replay the cross-validation's calls under other call-path settings, judged on
validation speakers only.

`avatar-agent train --save-folds DIR` keeps each fold's model (trained on three folds,
stopped early on the fourth). This script plays each fold's validation speakers'
calls again through the live call path (`affect/call_core.py`) with the `affect:`
settings of each variant, refits the anger index's scaling on them as training does,
and scores each variant the way a change must be judged: the escalation policy is
chosen on the validation calls of the *other* folds (`training/policy.py`'s rule) and
applied to this fold's, so no call is scored by a policy chosen on it. Test speakers
are read only with `--test VARIANT`, once a variant has been chosen.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/replay_calls.py --folds DIR \\
        --variant base= --variant slower=smoothing_s:2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from avatar_agent.affect.labels import discover, one_per_recording
from avatar_agent.core.config import Config
from avatar_agent.training.call_metrics import summarize
from avatar_agent.training.calls import (
    ANGRY_FIRST,
    CALM_ONLY,
    ESCALATE_WITHIN_S,
    CallResult,
    plan_calls,
    run_calls,
)
from avatar_agent.training.crossval import calibrate_anger, net_predictor
from avatar_agent.training.dataset import load_clips
from avatar_agent.training.evaluate import default_cache
from avatar_agent.training.policy import choose, describe, with_policy


def parse_variant(text: str) -> tuple[str, dict[str, float]]:
    """`name=key:value,key:value` (keys of the `affect:` section) -> (name, overrides)."""
    name, _, rest = text.partition("=")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition(":")
        try:
            overrides[key] = float(value)
        except ValueError:
            raise SystemExit(f"error: --variant {text!r}: {key} needs a number, "
                             f"got {value!r}") from None
    return name, overrides


def config_of(overrides: dict[str, float]) -> Config:
    """The default config with these `affect:` settings, checked as a config file's are
    (an unknown or out-of-range key is an error, not a variant that silently changes
    nothing)."""
    cfg = Config()
    try:
        affect = type(cfg.affect).model_validate({**cfg.affect.model_dump(), **overrides})
    except ValidationError as exc:
        raise SystemExit(f"error: affect settings {overrides}: {exc}") from None
    return cfg.model_copy(update={"affect": affect})


def escalation_share(calls: list[CallResult]) -> tuple[int, int, int, float]:
    """(angry starts escalated within 10 s, angry starts, calm-only escalations,
    median seconds to the first escalation of angry starts)."""
    firsts = [r.escalations[0] if r.escalations else np.inf
              for r in calls if r.plan.kind == ANGRY_FIRST]
    calm = sum(len(r.escalations) for r in calls if r.plan.kind == CALM_ONLY)
    within = sum(t <= ESCALATE_WITHIN_S for t in firsts)
    return within, len(firsts), calm, float(np.median(firsts)) if firsts else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", type=Path, required=True, help="`train --save-folds` output")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--variant", action="append", required=True,
                    help="name=key:value,... (affect settings); `name=` is as configured")
    ap.add_argument("--cache", type=Path, help="feature cache (default ~/.cache/avatar-agent)")
    ap.add_argument("--seed", type=int, default=0, help="the training run's seed")
    ap.add_argument("--test", metavar="VARIANT",
                    help="also score the test speakers' calls under this variant, each fold "
                         "with the policy chosen on its own validation calls, as training does")
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()
    torch.set_num_threads(1)
    variants = {name: (overrides, config_of(overrides))
                for name, overrides in map(parse_variant, args.variant)}

    found, _ = discover(args.data)
    found, _ = one_per_recording(found)
    clips = [c for c in load_clips(found, args.cache or default_cache()) if c.error is None]
    dumps = [torch.load(p, weights_only=False)
             for p in sorted(args.folds.glob("fold*.pt"))]
    if not dumps:
        raise SystemExit(f"{args.folds}: no fold*.pt (train with --save-folds)")
    report: dict[str, Any] = {}
    for name, (overrides, cfg) in variants.items():
        val_calls = []
        for d in dumps:
            speakers = set(d["val"])
            val = [c for c in clips if c.label.speaker in speakers]
            val_calls.append(calibrate_anger(d["net"], val, args.seed, cfg))
        nested = []
        for k, calls in enumerate(val_calls):
            others = [r for j, rs in enumerate(val_calls) if j != k for r in rs]
            nested += with_policy(calls, choose(others, cfg.escalation))
        within, n, calm, median = escalation_share(nested)
        pooled = choose([r for rs in val_calls for r in rs], cfg.escalation)
        report[name] = {"overrides": overrides, "validation_nested": {
            "angry_within_10s": within, "angry_starts": n, "share": round(within / n, 3),
            "median_s": median, "calm_escalations": calm},
            "policy_on_all_validation": describe(pooled)}
        print(f"{name:12s} validation (policy from the other folds): angry starts within "
              f"10 s {within}/{n} ({within / n:.0%}), median {median:.2f} s, calm-only "
              f"escalations {calm}; policy on all validation calls: {describe(pooled)}",
              flush=True)
        if args.test == name:
            tests = []
            for d, calls in zip(dumps, val_calls, strict=True):
                policy = choose(calls, cfg.escalation)
                speakers = set(d["test"])
                test = [c for c in clips if c.label.speaker in speakers]
                tests += with_policy(run_calls(net_predictor(d["net"]),
                                               plan_calls(test, args.seed), cfg), policy)
            overall = summarize(tests)["overall"]
            report[name]["test"] = {k: overall[k] for k in ("angry_first", "calm_only")}
            a, c = overall["angry_first"], overall["calm_only"]
            print(f"{name:12s} test: angry starts within 10 s {a['share_within_10s']:.0%} of "
                  f"{a['n_speakers']} (median {a['median_s']} s), calm-only escalations "
                  f"{c['escalations']} in {c['hours']} h", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
