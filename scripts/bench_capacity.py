"""Capacity: how many full calls this machine holds, and where each call's CPU goes.

Starts `avatar-agent serve` (embedded defaults, its own SQLite file in a temp dir) and,
side by side in the same run, the transport floor (`avatar_agent.testing.floor`: aiortc
media both ways, nothing else). For each K it runs K aiortc customers on this machine,
each streaming a real GRID clip over and over, and prints per K: calls held (>= 28 fps
with no frame gap >= 250 ms, as the customers receive them), fps, the worst gap, the
server's CPU per call and its split by stage from the server's own counters (CPU of each
stage's thread pool, `avatar_agent_thread_cpu_seconds_total`), and how much of the
customer's face was analysed. A K past the server's call limit shows the refusals.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_capacity.py [--calls 1 2 4 5]
        [--seconds 20] [--no-floor] [--profile DIR] [--json FILE]

`--profile DIR` also records a py-spy profile of the server at the largest K
(DIR/server-K.svg, a flame graph) when py-spy is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from avatar_agent.core.admission import budget_for
from avatar_agent.core.config import ServerConfig
from avatar_agent.core.threadcpu import process_cpu_seconds
from avatar_agent.testing.client import CustomerClient
from avatar_agent.testing.loop_media import LoopedClip

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the server spawner is test support, not the product

from tests.support.server import spawn_server, stop_server, wait_healthy  # noqa: E402
from tests.support.services import free_port  # noqa: E402

MIN_FPS, MAX_GAP_S = 28.0, 0.25
# Thread pools → the stage they run (see core/threadcpu.py).
STAGES = {
    "MainThread": "loop", "render": "render", "asyncio": "encode", "analysis": "analysis",
    "native": "native", "affect": "affect", "tts": "speech", "asr": "speech",
    "video-decoder": "decode", "audio-decoder": "decode", "mediapipe": "mesh",
}
COLUMNS = ("loop", "render", "encode", "decode", "analysis", "mesh", "native", "affect",
           "speech", "other")


async def server_counters(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Stage CPU seconds and analysis counts from the server's /metrics ({} for the floor)."""
    async with http.get(url + "/metrics") as r:
        if r.status != 200:
            return {}
        text = await r.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("avatar_agent_thread_cpu_seconds_total{"):
            pool = line.split('pool="', 1)[1].split('"', 1)[0]
            stage = STAGES.get(pool, "other")
            out[stage] = out.get(stage, 0.0) + float(line.split()[-1])
        elif line.startswith("avatar_agent_stage_seconds_sum{"):
            stage = line.split('stage="', 1)[1].split('"', 1)[0]
            out["wall_" + stage] = float(line.split()[-1])
        elif line.startswith('avatar_agent_frames_analysed_total{kind="face"}'):
            out["face_frames"] = float(line.split()[-1])
    return out


async def all_counters(http: aiohttp.ClientSession, urls: list[str]) -> dict[str, float]:
    """The counters of several servers (the workers behind a front), summed."""
    out: dict[str, float] = {}
    for one in await asyncio.gather(*(server_counters(http, u) for u in urls)):
        for key, value in one.items():
            out[key] = out.get(key, 0.0) + value
    return out


async def run_k(url: str, pids: list[int], clip: LoopedClip, k: int, seconds: float,
                profile: Path | None, consent: bool = True,
                counters: list[str] | None = None) -> dict[str, object]:
    """K customers on the server at `url`, whose processes are `pids` (several behind
    a front); the split by stage from the /metrics of `counters` (default: `url`)."""
    metrics = [url] if counters is None else counters
    # a cluster front pins an offer to the worker that issued its join token with a
    # cookie; customers connect one after another, so one jar serves them all
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: cookies from an IP address (127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        clients = [CustomerClient(url, looped=clip, consent=consent) for _ in range(k)]
        refused = 0
        try:
            placed = []
            for c in clients:  # one after another, as customers arrive
                try:
                    await c.connect(http)
                    placed.append(c)
                except RuntimeError as exc:
                    if "503" not in str(exc):
                        raise
                    refused += 1
            ok = await asyncio.gather(*(c.wait_for(lambda c=c: c.rx.video_times, 20)
                                        for c in placed))
            if not all(ok):
                raise SystemExit("a call never received video")
            await asyncio.sleep(3.0)  # past the greeting's start and other start-up work
            spy = _start_profile(pids[0], seconds, profile, k) if profile else None
            me0 = process_cpu_seconds(os.getpid())
            c0 = await all_counters(http, metrics)
            cpu0, t0 = sum(map(process_cpu_seconds, pids)), time.monotonic()
            await asyncio.sleep(seconds)
            c1 = await all_counters(http, metrics)
            cpu1, t1 = sum(map(process_cpu_seconds, pids)), time.monotonic()
            me1 = process_cpu_seconds(os.getpid())
            if spy is not None:
                spy.wait()
            n = len(placed)
            fps = [c.rx.fps(t0, t1) for c in placed]
            gaps = [c.rx.worst_gap(t0, t1) for c in placed]
            dt = t1 - t0
            split = {s: (c1.get(s, 0.0) - c0.get(s, 0.0)) / dt * 100 / max(n, 1)
                     for s in COLUMNS if s in c1}
            result: dict[str, object] = {
                "calls": k, "placed": n, "refused": refused,
                "held": sum(f >= MIN_FPS and g < MAX_GAP_S for f, g in zip(fps, gaps, strict=True)),
                "fps_mean": statistics.mean(fps) if fps else 0.0,
                "fps_min": min(fps, default=0.0),
                "worst_gap_ms": max(gaps, default=0.0) * 1000,
                "cpu_pct": (cpu1 - cpu0) / dt * 100,
                "cpu_pct_per_call": (cpu1 - cpu0) / dt * 100 / max(n, 1),
                "split_pct_per_call": split,
                "client_cpu_pct": (me1 - me0) / dt * 100,  # the K customers, same machine
            }
            result["stage_wall_ms_per_s"] = {
                key[5:]: (c1[key] - c0.get(key, 0.0)) / dt * 1000 / max(n, 1)
                for key in c1 if key.startswith("wall_")}
            if "face_frames" in c1:
                faces = c1["face_frames"] - c0["face_frames"]
                result["face_fps_per_call"] = faces / dt / max(n, 1)
            await asyncio.gather(*(c.hangup(http) for c in placed))
            return result
        finally:
            await asyncio.gather(*(c.close() for c in clients))
            await asyncio.sleep(2.0)  # let the server finish closing before the next K


def _start_profile(pid: int, seconds: float, out: Path, k: int) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("(py-spy is not installed: no profile)", file=sys.stderr)
        return None
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
         "--nonblocking", "--threads", "--output", str(out / f"server-{k}.svg")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_floor() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "avatar_agent.testing.floor",
                             "--port", str(port)], cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    if wait_healthy(url, 60, proc):
        return proc, url
    proc.kill()
    raise SystemExit("the transport floor did not start")


def print_row(name: str, r: dict[str, object]) -> None:
    split = r["split_pct_per_call"]
    assert isinstance(split, dict)
    cells = " ".join(f"{split[c]:>6.1f}" if c in split else f"{'':>6}" for c in COLUMNS)
    face = r.get("face_fps_per_call")
    face_cell = "" if not isinstance(face, float) else f"{face:.1f}"
    print(f"{name:<7} {r['calls']:>2} {r['held']:>4} {r['refused']:>4} {r['fps_mean']:>6.1f} "
          f"{r['fps_min']:>6.1f} {r['worst_gap_ms']:>6.0f} {r['cpu_pct_per_call']:>6.1f} "
          f"{cells} {face_cell:>6} {r['client_cpu_pct']:>6.0f}", flush=True)


def run_spawned(args: argparse.Namespace, clip: LoopedClip) -> list[dict[str, object]]:
    """`avatar-agent serve` in a temp dir with the shipped CPU budget (or --call-cores)."""
    rows: list[dict[str, object]] = []
    budget = ServerConfig()  # test servers run without one, so it is set here
    server = ("server:\n  joins_per_client_per_min: 600\n  max_calls_per_client: 20\n"
              "  max_half_open_per_client: 8\n")
    if args.server_src:  # an older server has no budget key; this comment keeps it so
        server += "  # call_cores: not known to this server\n"
    else:
        cores = budget.call_cores if args.call_cores is None else (args.call_cores or "null")
        server += f"  call_cores: {cores}\n  utilisation: {budget.utilisation}\n"
    name = "full" if not args.no_consent else "no-cons"
    with tempfile.TemporaryDirectory() as d:
        proc, url = spawn_server(Path(d), REPO, config_yaml=server + args.config)
        try:
            for k in args.calls:
                prof = args.profile if args.profile and k == max(args.calls) else None
                r = asyncio.run(run_k(url, [proc.pid], clip, k, args.seconds, prof,
                                      consent=not args.no_consent))
                r["server"] = name
                rows.append(r)
                print_row(name, r)
        finally:
            stop_server(proc)
    return rows


def run_floor(args: argparse.Namespace, clip: LoopedClip) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    floor, furl = start_floor()
    try:
        for k in args.calls:
            r = asyncio.run(run_k(furl, [floor.pid], clip, k, args.seconds, None))
            r["server"] = "floor"
            rows.append(r)
            print_row("floor", r)
    finally:
        floor.terminate()
        floor.wait(20)
    return rows


def run_given(args: argparse.Namespace, clip: LoopedClip) -> list[dict[str, object]]:
    """A server or cluster front already running at --url, its processes --pid."""
    if not args.pid:
        raise SystemExit("--url needs --pid: the server processes whose CPU to count")
    rows: list[dict[str, object]] = []
    for k in args.calls:
        r = asyncio.run(run_k(args.url.rstrip("/"), args.pid, clip, k, args.seconds, None,
                              consent=not args.no_consent,
                              counters=args.metrics or [args.url.rstrip("/")]))
        r["server"] = args.name
        rows.append(r)
        print_row(args.name, r)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, nargs="+", default=[1, 2, 4, 5])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--no-floor", action="store_true", help="skip the transport floor")
    ap.add_argument("--no-consent", action="store_true",
                    help="customers decline analysis: the call without face, voice and affect")
    ap.add_argument("--config", default="",
                    help="extra top-level YAML for the server (not `server:`)")
    ap.add_argument("--profile", type=Path, help="py-spy flame graph of the largest K here")
    ap.add_argument("--json", type=Path, help="write the rows here too")
    ap.add_argument("--call-cores", type=float, default=None,
                    help="server.call_cores for this run (default: the shipped budget; 0: none)")
    ap.add_argument("--server-src", type=Path,
                    help="run the server from this src/ (another checkout), for a before/after")
    ap.add_argument("--url", help="measure this running server or cluster front instead")
    ap.add_argument("--pid", type=int, nargs="+", default=[],
                    help="with --url: the server processes whose CPU is counted")
    ap.add_argument("--name", default="given", help="with --url: the rows' first column")
    ap.add_argument("--metrics", nargs="+", default=[],
                    help="with --url: each worker's own URL, to sum their counters")
    args = ap.parse_args()
    if args.server_src:  # the customers stay on this checkout's code
        os.environ["PYTHONPATH"] = str(args.server_src.resolve())
    clip_path = sorted((args.data / "talking_face" / "grid").glob("*.mpg"))[0]
    clip = LoopedClip(clip_path)
    print(f"{'server':<7} {'K':>2} {'held':>4} {'503':>4} {'fps':>6} {'min':>6} {'gap ms':>6} "
          f"{'%/call':>6} " + " ".join(f"{c:>6}" for c in COLUMNS)
          + f" {'face/s':>6} {'client':>6}")
    rows = run_given(args, clip) if args.url else run_spawned(args, clip)
    if not args.no_floor and not args.url:
        rows += run_floor(args, clip)
    print(f"({os.cpu_count()} CPU cores, load client on the same machine; CPU % is of one "
          f"core, per call; held = >= {MIN_FPS:.0f} fps and no gap >= {MAX_GAP_S * 1000:.0f} ms "
          f"as received; clip {clip_path.name} looped; face/s = customer frames analysed; "
          "client = CPU % of the load client itself)")
    advice = budget_advice(rows, float(os.cpu_count() or 1), ServerConfig().utilisation)
    if advice:
        print(advice)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def budget_advice(rows: list[dict[str, object]], cores: float, utilisation: float) -> str:
    """What `server.call_cores` admits as many calls as held here (full calls, every
    one placed and held, none refused), when a larger K placed calls that did not hold
    (calls the budget refused are no evidence of a limit)."""
    held, failed = [], []
    for r in rows:
        if r.get("server") != "full":
            continue
        k, placed, ok = (int(str(r[key])) for key in ("calls", "placed", "held"))
        if ok == placed == k and not r["refused"]:
            held.append(k)
        elif ok < placed:
            failed.append(k)
    if not held:
        return ""
    best = max(held)
    past = [k for k in failed if k > best]
    if not past:
        return (f"every K up to {best} held; larger K were not tried or were refused: run with "
                "--call-cores 0 and a larger K to find this machine's limit")
    return (f"this machine held {best} full call(s) and not {min(past)}:"
            f" server.call_cores: {budget_for(best, cores, utilisation)} admits {best} "
            f"({cores:g} cores at utilisation {utilisation})")


if __name__ == "__main__":
    main()
