"""Command line: `avatar-agent serve | check-config`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from avatar_agent.core.config import Config, ConfigError, ServerConfig, load_config, project_path

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Real-time avatar support calls."
)
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML file; omitted keys keep their defaults")
]


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default from config)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default from config)")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Start the server."""
    # Before numpy loads: its BLAS would start a spinning thread per core for the
    # occasional small matrix product, on cores every call's media needs. Torch and
    # OpenCV are set to one thread each at start-up (runtime.py); a value already in
    # the environment wins.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from aiohttp import web

    from avatar_agent.app import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aioice").setLevel(logging.WARNING)
    try:
        cfg = load_config(config)
        _check_config_files(cfg)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    except (OSError, ValueError) as exc:  # the affect script
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if overrides:
        server = ServerConfig.model_validate({**cfg.server.model_dump(), **overrides})
        cfg = cfg.model_copy(update={"server": server})
    h, p = cfg.server.host, cfg.server.port
    print(f"avatar-agent: serving on http://{h}:{p}/", flush=True)
    from avatar_agent.core.accesslog import access_logger

    app = create_app(cfg)
    app.on_startup.append(_settle_heap)
    web.run_app(app, host=h, port=p, print=None,
                access_log_class=access_logger(cfg.server.access_log_client_ip))


async def _settle_heap(_app: object) -> None:
    """Move everything loaded at start-up (models, graphs, the web app) out of the
    collector's sight. A full collection otherwise walks millions of long-lived objects
    and stops every thread for ~200 ms, a visible freeze in every call's video."""
    import gc

    gc.collect()
    gc.freeze()


def _check_config_files(cfg: Config) -> None:
    """The files the config names are read at start-up: refuse to serve with a bad one
    rather than run every call on neutral cues or without its affect script."""
    from avatar_agent.affect.script import load_script
    from avatar_agent.avatar.behavior import load_persona

    load_persona(project_path(cfg.avatar.behavior))
    if cfg.affect.script is not None:
        load_script(Path(cfg.affect.script))
    if cfg.knowledge.path is not None:
        from avatar_agent.speech.knowledge import load_knowledge

        load_knowledge(project_path(cfg.knowledge.path))


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="YAML file to validate")]) -> None:
    """Validate a config, persona or knowledge file; print each problem with its YAML
    path and line (a config's persona and knowledge files are checked too)."""
    from avatar_agent.avatar.behavior import load_persona, looks_like_persona

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except yaml.YAMLError:
        data = None  # the loader below reports the syntax error with its line
    try:
        if looks_like_persona(path, data):
            load_persona(path)
        elif isinstance(data, list) or "knowledge" in path.parts:
            from avatar_agent.speech.knowledge import load_knowledge

            load_knowledge(path)  # a knowledge base: a list of entries
        else:
            cfg = load_config(path)
            if cfg.knowledge.path is not None:  # the knowledge base it names, too
                from avatar_agent.speech.knowledge import load_knowledge

                load_knowledge(project_path(cfg.knowledge.path))
    except ConfigError as exc:
        for issue in exc.issues:
            err.print(f"{exc.source}:{issue}", highlight=False, markup=False)
        err.print(f"{len(exc.issues)} problem(s) found", style="red")
        raise typer.Exit(1) from None
    print(f"{path}: OK")


@app.command()
def analyze(
    clip: Annotated[Path, typer.Argument(help="Video or audio file (mp4, wav, flac, mp3, ...)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the outputs")],
    max_fps: Annotated[
        float,
        typer.Option(help="Analyse at most this many video frames per second (0 = every frame)"),
    ] = 10.0,
) -> None:
    """Face and voice features of a clip: features.csv, summary.json, features.png."""
    from tqdm import tqdm

    from avatar_agent.perception.offline import AnalyzeError, analyze_file, probe
    from avatar_agent.perception.report import write_outputs

    logging.basicConfig(level=logging.WARNING)
    bar = tqdm(total=None, unit="s", desc=clip.name, bar_format="{l_bar}{bar}| {n:.1f}/{total} s")

    def progress(t: float) -> None:
        bar.update(max(0.0, t - bar.n))

    try:
        bar.total = round(probe(clip)[2], 1) or None
        result = analyze_file(clip, progress, max_fps or None)
    except AnalyzeError as exc:
        bar.close()
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    bar.close()
    paths = write_outputs(result, out)
    print(
        f"{clip.name}: {result.duration:.1f} s analysed in {result.elapsed_s:.1f} s "
        f"({result.speed:.1f}x real time; {result.speed_after_startup:.1f}x after "
        f"{result.startup_s:.1f} s of start-up)"
    )
    for p in paths.values():
        print(f"  {p}")


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Folder of labelled clips, e.g. ../shared/data")],
    out: Annotated[Path, typer.Option(help="Folder for affect.pt and MODEL_CARD.md")] = Path(
        "assets/models"
    ),
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    max_epochs: Annotated[int, typer.Option(help="Upper bound on epochs per model")] = 60,
    cache: Annotated[
        Path | None, typer.Option(help="Feature cache folder (default ~/.cache/avatar-agent)")
    ] = None,
    workers: Annotated[int, typer.Option(help="Feature extraction processes")] = 2,
    save_calls: Annotated[Path | None, typer.Option(
        help="Also pickle every fold's call traces here (for escalation-policy studies)")
    ] = None,
    save_folds: Annotated[Path | None, typer.Option(
        help="Also keep each cross-validation fold's model in this folder "
             "(scripts/replay_calls.py replays their calls under other settings)")
    ] = None,
    members: Annotated[int, typer.Option(
        help="Networks trained from different seeds and averaged")] = 4,
    jobs: Annotated[int, typer.Option(
        help="Members trained at once, one process and one CPU thread each")] = 1,
) -> None:
    """Train the affect model speaker-independently; writes affect.pt and MODEL_CARD.md."""
    from avatar_agent.training.training_run import TrainRunError, run_training

    logging.basicConfig(level=logging.WARNING)
    try:
        run_training(data, out, seed=seed, max_epochs=max_epochs, cache=cache, workers=workers,
                     save_calls=save_calls, save_folds=save_folds, members=members,
                     jobs=jobs)
    except TrainRunError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="Folder searched recursively for labelled clips")],
    out: Annotated[Path, typer.Option(help="report.json to write (a .png goes beside it)")],
    model: Annotated[Path, typer.Option(help="Trained weights")] = Path(
        "assets/models/affect.pt"
    ),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    cache: Annotated[Path | None, typer.Option(help="Feature cache folder")] = None,
    no_cache: Annotated[bool, typer.Option(help="Do not read or write the cache")] = False,
    workers: Annotated[int, typer.Option(help="Feature extraction processes")] = 2,
    protocol: Annotated[str, typer.Option(
        help="call: chain each speaker's clips into calls played through the live code "
        "(escalations, levels, causal per-clip figures); clip: each clip alone")] = "call",
    config: ConfigOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the call orders")] = 0,
) -> None:
    """Score the affect model on any folder of labelled clips (known names or labels.csv)."""
    from tqdm import tqdm

    from avatar_agent.training.call_metrics import call_headline
    from avatar_agent.training.evaluate import EvaluateError, default_cache
    from avatar_agent.training.evaluate import evaluate as run_evaluate
    from avatar_agent.training.metrics import headline

    logging.basicConfig(level=logging.WARNING)
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    bar = tqdm(total=None, unit="clip", desc="features")

    def on_total(n: int) -> None:
        bar.total = n
        bar.refresh()

    try:
        report = run_evaluate(
            data, model, out, device=device,
            cache=None if no_cache else (cache or default_cache()),
            workers=workers, protocol=protocol, cfg=cfg, seed=seed,
            progress=bar.update, on_total=on_total,
        )
    except (EvaluateError, FileNotFoundError, ValueError) as exc:
        bar.close()
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    bar.close()
    print(headline(report))
    if "calls" in report:
        print(call_headline(report["calls"]["overall"]))
    print(f"  {out}\n  {out.with_suffix('.png')}")
    if report["skipped"]:
        print(f"  {len(report['skipped'])} file(s) skipped, listed in the report")


operators_app = typer.Typer(no_args_is_help=True, help="Manage dashboard operators.")
app.add_typer(operators_app, name="operators")


@operators_app.command("add")
def operators_add(
    name: Annotated[str, typer.Argument(help="Login name (letters, digits, _ . @ -)")],
    config: ConfigOpt = None,
    replace: Annotated[bool, typer.Option(help="Set a new password if NAME exists")] = False,
    role: Annotated[str | None, typer.Option(
        help="operator (dashboard), tuner (also persona tuning) or admin; "
             "new operators default to operator, --replace keeps the role unless given")
    ] = None,
) -> None:
    """Create an operator; the password is read from stdin (first line)."""
    import getpass
    import sys

    from avatar_agent.core.store import Store
    from avatar_agent.operators.auth import hash_password, valid_name
    from avatar_agent.operators.roles import ROLES, valid_role

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    if not valid_name(name):
        err.print("error: a name has 1-64 letters, digits or _ . @ -", highlight=False)
        raise typer.Exit(2)
    if role is not None and not valid_role(role):
        err.print(f"error: --role must be one of {', '.join(ROLES)}", highlight=False,
                  markup=False)
        raise typer.Exit(2)
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    store = Store(cfg.storage.url)
    try:
        if not store.add_operator(name, hashed, replace=replace, role=role):
            err.print(f"error: operator {name!r} exists (use --replace to set a new password)",
                      highlight=False, markup=False)
            raise typer.Exit(1)
    finally:
        store.close()
    shown = role or ("role unchanged" if replace else "operator")
    print(f"operator {name} {'updated' if replace else 'added'} ({shown})")


@operators_app.command("revoke")
def operators_revoke(
    name: Annotated[str, typer.Argument(help="The operator whose logins end now")],
    config: ConfigOpt = None,
) -> None:
    """End every login session of NAME at once (their tokens stop working)."""
    from avatar_agent.core.store import Store
    from avatar_agent.operators.sessions import SessionStore

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    store = Store(cfg.storage.url)
    try:
        ended = SessionStore(store.engine).revoke(name)
    finally:
        store.close()
    print(f"operator {name}: {ended} session(s) ended")


@app.command()
def preview(
    behavior: Annotated[
        Path, typer.Option(help="Persona file, e.g. configs/behaviors/support.yaml")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write")] = Path("sheet.png"),
) -> None:
    """Contact sheet of the avatar for each customer level and conversation state."""
    from avatar_agent.avatar.behavior import load_persona
    from avatar_agent.avatar.preview import write_sheet

    try:
        persona = load_persona(behavior)
    except ConfigError as exc:
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(2) from None
    print(write_sheet(persona, out))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
