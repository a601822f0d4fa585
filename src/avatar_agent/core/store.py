"""Persistence of calls: SQLAlchemy; SQLite by default, PostgreSQL (psycopg 3) for several workers.

Only metadata about a call and derived data (its emotion curve and events) are
stored here, never customers' audio or video. The schema is `core.migrations`' (Alembic),
brought up to date whenever a store opens.
All methods block; the async shell calls them through `AsyncStore`, which keeps
them on one worker thread so the event loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import create_engine, delete, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from avatar_agent.core import migrations
from avatar_agent.core.tables import (
    AffectPointRow,
    CallEventRow,
    CallHeartbeatRow,
    CallRow,
    EscalationRow,
    OperatorRow,
    PersonaVersionRow,
    WorkerRow,
)

P = ParamSpec("P")
T = TypeVar("T")


AFFECT_FIELDS = ("t", "arousal", "valence", "anger_index", "level", "emotion")
ESCALATION_FIELDS = ("id", "call_id", "created_at", "t", "reason", "detail",
                     "acknowledged_by", "acknowledged_at")


@dataclass(frozen=True)
class CallRecord:
    id: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None
    consent_analysis: bool
    worker: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _record(row: CallRow) -> CallRecord:
    return CallRecord(row.id, row.started_at, row.ended_at, row.end_reason, row.consent_analysis,
                      row.worker)


def _escalation(row: EscalationRow) -> dict[str, Any]:
    out = {k: getattr(row, k) for k in ESCALATION_FIELDS}
    for k in ("created_at", "acknowledged_at"):
        if out[k] is not None:
            # SQLite hands back naive datetimes; they were written in UTC
            when = out[k] if out[k].tzinfo else out[k].replace(tzinfo=dt.UTC)
            out[k] = when.isoformat()
    return out


def _version(row: PersonaVersionRow) -> dict[str, Any]:
    when = row.saved_at if row.saved_at.tzinfo else row.saved_at.replace(tzinfo=dt.UTC)
    return {"id": row.id, "persona": row.persona, "saved_at": when.isoformat(),
            "operator": row.operator, "action": row.action, "changes": row.changes,
            "undone": row.undone}


def engine_url(url: str) -> str:
    """The URL SQLAlchemy is given: PostgreSQL goes through psycopg 3, whichever way the
    config spells it (`postgresql://`, `postgres://` or `postgresql+psycopg://`)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1)
                      if url.startswith("postgres://") else url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Store:
    def __init__(self, url: str, pool_size: int = 5) -> None:
        parsed = make_url(engine_url(url))
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            # A server database: a pool of connections kept open (the store's one
            # thread needs one at a time, login checks and the CLI a few more), checked
            # before use so a database restart costs a reconnect, not a failed write.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                          pool_recycle=1800)
        self.engine = create_engine(parsed, **kwargs)
        migrations.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def call_started(self, call_id: str, consent_analysis: bool,
                     worker: str | None = None) -> None:
        with Session(self.engine) as s, s.begin():
            s.add(CallRow(id=call_id, started_at=_now(), consent_analysis=consent_analysis,
                          worker=worker))

    def call_ended(self, call_id: str, reason: str) -> None:
        """Mark a call ended; the first reason recorded wins."""
        with Session(self.engine) as s, s.begin():
            s.execute(
                update(CallRow)
                .where(CallRow.id == call_id, CallRow.ended_at.is_(None))
                .values(ended_at=_now(), end_reason=reason)
            )
            s.execute(delete(CallHeartbeatRow).where(CallHeartbeatRow.call_id == call_id))

    def heartbeat(self, call_ids: list[str], now: dt.datetime | None = None) -> None:
        """These calls are alive now."""
        at = now or _now()
        with Session(self.engine) as s, s.begin():
            for call_id in call_ids:
                s.merge(CallHeartbeatRow(call_id=call_id, at=at))

    def end_orphans(self, reason: str = "server_restart", worker: str | None = None) -> int:
        """Close rows left open by a server that stopped without ending its calls; each
        ends at its last heartbeat (or its start, if it never had one). With `worker`,
        only that worker's calls (the others' are still running)."""
        with Session(self.engine) as s, s.begin():
            q = select(CallRow).where(CallRow.ended_at.is_(None))
            if worker is not None:
                q = q.where(CallRow.worker == worker)
            orphans = list(s.scalars(q))
            ids = [row.id for row in orphans]
            beats = {b.call_id: b.at for b in s.scalars(
                select(CallHeartbeatRow).where(CallHeartbeatRow.call_id.in_(ids)))}
            for row in orphans:
                row.ended_at = beats.get(row.id, row.started_at)
                row.end_reason = reason
            if worker is None:
                s.execute(delete(CallHeartbeatRow))
            else:
                s.execute(delete(CallHeartbeatRow).where(CallHeartbeatRow.call_id.in_(ids)))
            return len(orphans)

    # --- workers of a cluster ----------------------------------------------------------

    def worker_beat(self, worker: str, address: str, calls: int, max_calls: int,
                    now: dt.datetime | None = None) -> None:
        """This worker is alive now, with this many calls of at most `max_calls`."""
        at = now or _now()
        with Session(self.engine) as s, s.begin():
            row = s.get(WorkerRow, worker)
            if row is None:
                s.add(WorkerRow(id=worker, address=address, started_at=at, heartbeat_at=at,
                                calls=calls, max_calls=max_calls))
            else:
                row.address, row.heartbeat_at = address, at
                row.calls, row.max_calls = calls, max_calls

    def workers(self) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            return [{"id": w.id, "address": w.address, "calls": w.calls,
                     "max_calls": w.max_calls, "heartbeat_at": w.heartbeat_at}
                    for w in s.scalars(select(WorkerRow).order_by(WorkerRow.id))]

    def calls_held_elsewhere(self, worker: str) -> list[CallRecord]:
        """Calls in progress on the other workers of the cluster, oldest first."""
        with Session(self.engine) as s:
            rows = s.scalars(select(CallRow).where(CallRow.ended_at.is_(None),
                                                   CallRow.worker.is_not(None),
                                                   CallRow.worker != worker)
                             .order_by(CallRow.started_at))
            return [_record(r) for r in rows]

    def worker_left(self, worker: str) -> None:
        """A worker that stops cleanly (its calls already ended) leaves the registry."""
        with Session(self.engine) as s, s.begin():
            s.execute(delete(WorkerRow).where(WorkerRow.id == worker))

    def end_lost_workers(self, lost_after_s: float, now: dt.datetime | None = None,
                         reason: str = "worker_lost") -> dict[str, list[str]]:
        """Workers silent for `lost_after_s` are gone: their open calls end (at their
        last heartbeat, or the worker's) with `reason`, curves and events kept, and the
        workers leave the registry. Which calls of which workers ended."""
        at = now or _now()
        cutoff = at - dt.timedelta(seconds=lost_after_s)
        out: dict[str, list[str]] = {}
        with Session(self.engine) as s, s.begin():
            lost = list(s.scalars(select(WorkerRow).where(WorkerRow.heartbeat_at < cutoff)
                                  .with_for_update(skip_locked=True)))
            for w in lost:
                calls = list(s.scalars(select(CallRow).where(CallRow.worker == w.id,
                                                             CallRow.ended_at.is_(None))))
                ids = [c.id for c in calls]
                beats = {b.call_id: b.at for b in s.scalars(
                    select(CallHeartbeatRow).where(CallHeartbeatRow.call_id.in_(ids)))}
                for c in calls:
                    c.ended_at, c.end_reason = beats.get(c.id, w.heartbeat_at), reason
                s.execute(delete(CallHeartbeatRow).where(CallHeartbeatRow.call_id.in_(ids)))
                s.delete(w)
                out[w.id] = ids
        return out

    def get_call(self, call_id: str) -> CallRecord | None:
        with Session(self.engine) as s:
            row = s.get(CallRow, call_id)
            return _record(row) if row else None

    def add_events(self, call_id: str, events: list[dict[str, Any]]) -> None:
        """Append events: dicts with "t", "kind" and any JSON-able details."""
        self.add_timeline(call_id, [], events)

    def add_timeline(self, call_id: str, points: list[dict[str, Any]],
                     events: list[dict[str, Any]]) -> None:
        """Curve points (dicts with AFFECT_FIELDS) and events in one transaction: a live
        call writes both every few seconds, and each commit is a disk sync on SQLite."""
        if not points and not events:
            return
        now = _now()
        with Session(self.engine) as s, s.begin():
            if points:
                s.execute(insert(AffectPointRow), [
                    {"call_id": call_id, "created_at": now, **{k: p[k] for k in AFFECT_FIELDS}}
                    for p in points])
            if events:
                s.execute(insert(CallEventRow), [
                    {"call_id": call_id, "created_at": now, "t": float(e["t"]),
                     "kind": e["kind"], "data": {k: v for k, v in e.items()
                                                 if k not in ("t", "kind")}}
                    for e in events])

    def affect_points(self, call_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(AffectPointRow).where(AffectPointRow.call_id == call_id)
                             .order_by(AffectPointRow.t, AffectPointRow.id))
            return [{k: getattr(r, k) for k in AFFECT_FIELDS} for r in rows]

    def events(self, call_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(CallEventRow).where(CallEventRow.call_id == call_id)
                             .order_by(CallEventRow.t, CallEventRow.id))
            return [{"t": r.t, "kind": r.kind, **r.data} for r in rows]

    def list_calls(self, limit: int = 100, ended_only: bool = False) -> list[CallRecord]:
        with Session(self.engine) as s:
            q = select(CallRow)
            if ended_only:
                q = q.where(CallRow.ended_at.is_not(None))
            rows = s.scalars(q.order_by(CallRow.started_at.desc()).limit(limit))
            return [_record(r) for r in rows]

    # --- operators and escalations --------------------------------------------------

    def add_operator(self, name: str, password_hash: str, replace: bool = False,
                     role: str | None = None) -> bool:
        """Create an operator (or replace their hash, and their role if one is given);
        False if the name exists. A new operator without a role is an `operator`."""
        with Session(self.engine) as s, s.begin():
            row = s.get(OperatorRow, name)
            if row is not None:
                if not replace:
                    return False
                row.password_hash = password_hash
                if role is not None:
                    row.role = role
                return True
            s.add(OperatorRow(name=name, password_hash=password_hash, created_at=_now(),
                              role=role or "operator"))
            return True

    def operator_hash(self, name: str) -> str | None:
        with Session(self.engine) as s:
            row = s.get(OperatorRow, name)
            return row.password_hash if row else None

    def operator_role(self, name: str) -> str | None:
        """The operator's role, or None for a name that is not (or no longer) an operator."""
        with Session(self.engine) as s:
            row = s.get(OperatorRow, name)
            return row.role if row else None

    def add_escalation(self, call_id: str, t: float, reason: str, detail: str) -> dict[str, Any]:
        with Session(self.engine) as s, s.begin():
            row = EscalationRow(call_id=call_id, created_at=_now(), t=t, reason=reason,
                                detail=detail[:256])
            s.add(row)
            s.flush()
            return _escalation(row)

    def acknowledge(self, escalation_id: int, operator: str) -> dict[str, Any] | None:
        """Record who took an escalation; the first operator to acknowledge keeps it."""
        with Session(self.engine) as s, s.begin():
            row = s.get(EscalationRow, escalation_id)
            if row is None:
                return None
            if row.acknowledged_by is None:
                row.acknowledged_by, row.acknowledged_at = operator, _now()
            return _escalation(row)

    def escalations(self, call_id: str | None = None, open_only: bool = False
                    ) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            q = select(EscalationRow)
            if call_id is not None:
                q = q.where(EscalationRow.call_id == call_id)
            if open_only:
                q = q.where(EscalationRow.acknowledged_by.is_(None))
            return [_escalation(r) for r in s.scalars(q.order_by(EscalationRow.id))]

    # --- persona versions (the tuning page) ----------------------------------------------

    def add_persona_version(self, persona: str, operator: str, action: str,
                            changes: list[Any], before: str, after: str) -> dict[str, Any]:
        with Session(self.engine) as s, s.begin():
            row = PersonaVersionRow(persona=persona, saved_at=_now(), operator=operator,
                                    action=action, changes=changes, before=before, after=after)
            s.add(row)
            s.flush()
            return _version(row)

    def persona_history(self, persona: str, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, without the file texts."""
        with Session(self.engine) as s:
            rows = s.scalars(select(PersonaVersionRow)
                             .where(PersonaVersionRow.persona == persona)
                             .order_by(PersonaVersionRow.id.desc()).limit(limit))
            return [_version(r) for r in rows]

    def undo_persona_save(self, persona: str, current: str) -> dict[str, Any] | None:
        """Mark the latest save still in effect as undone and return it with its texts;
        None if there is none, or if the file is no longer what that save wrote."""
        with Session(self.engine) as s, s.begin():
            row = s.scalars(select(PersonaVersionRow)
                            .where(PersonaVersionRow.persona == persona,
                                   PersonaVersionRow.action == "save",
                                   PersonaVersionRow.undone.is_(False))
                            .order_by(PersonaVersionRow.id.desc()).limit(1)).first()
            if row is None or row.after != current:
                return None
            row.undone = True
            return {**_version(row), "before": row.before, "after": row.after}

    def purge_before(self, cutoff: dt.datetime) -> dict[str, int]:
        """Delete curves, events and escalations written before cutoff, and the rows of
        calls that ended before it. Returns how many rows of each table went."""
        counts: dict[str, int] = {}
        with Session(self.engine) as s, s.begin():
            for name, table in (("affect_points", AffectPointRow),
                                ("call_events", CallEventRow),
                                ("escalations", EscalationRow)):
                res = s.execute(delete(table).where(table.created_at < cutoff))
                counts[name] = int(getattr(res, "rowcount", 0) or 0)
            # a call row goes only once nothing refers to it any more
            ended = select(CallRow.id).where(CallRow.ended_at < cutoff)
            for table in (AffectPointRow, CallEventRow, EscalationRow):
                s.execute(delete(table).where(table.call_id.in_(ended)))
            res = s.execute(delete(CallRow).where(CallRow.ended_at < cutoff))
            counts["calls"] = int(getattr(res, "rowcount", 0) or 0)
        return counts


class AsyncStore:
    """Runs Store calls on one dedicated thread, in order."""

    def __init__(self, store: Store, executor: Executor | None = None) -> None:
        self.store = store
        self.worker: str | None = None  # recorded as the owner of the calls started here
        # `executor` only for a call run in virtual time (core.aio.InlineExecutor).
        self._pool: Executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="store")

    async def call_started(self, call_id: str, consent_analysis: bool) -> None:
        await self._run(self.store.call_started, call_id, consent_analysis, self.worker)

    async def call_ended(self, call_id: str, reason: str) -> None:
        await self._run(self.store.call_ended, call_id, reason)

    async def add_events(self, call_id: str, events: list[dict[str, Any]]) -> None:
        await self._run(self.store.add_events, call_id, events)

    async def add_timeline(self, call_id: str, points: list[dict[str, Any]],
                           events: list[dict[str, Any]]) -> None:
        await self._run(self.store.add_timeline, call_id, points, events)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Any `Store` method (or function of it) on the store's thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, functools.partial(fn, *args, **kwargs)
        )

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.store.close()
