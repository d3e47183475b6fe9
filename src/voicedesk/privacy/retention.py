"""The retention sweep (R-7.1, R-7.2, R-7.3): delete or anonymise what has outlived its period.

Per tenant and data category (periods and actions from ``voicedesk.domain.retention``):

==============  ==========================================================================
recordings      blob and row deleted once the call is older than the period
transcripts     turns deleted — or, where the tenant keeps transcripts for statistics,
                PII-redacted (German/English) and re-encrypted under a key that belongs
                to no person, so no path leads back (R-7.3)
call_metadata   anonymised (``anonymise_call_metadata``): numbers, names, summary, carrier
                id, subject and other links and exact times dropped; date, rounded
                duration, direction, status, language and outcome category kept. What is
                still attached to such a call (recording, unredacted turns) goes with it.
customer_data   subjects whose relationship ended (or whose last contact was) longer ago
                than the period: their data key is destroyed (crypto-shredding, recorded in
                the erasure ledger) and contact, appointments, messages, outbox and subject
                rows deleted
logs            audit entries older than the period cut behind a signed checkpoint
                (deployment-wide, see ``_sweep_logs``)
==============  ==========================================================================

Legal holds (``privacy.holds``) protect a subject and all its calls, or a call and its
subject; held records are skipped and counted.

The sweep walks each category in key order (the call's start and id, or the subject id)
in batches. Each batch is one transaction that also stores the batch's last key in the
tenant's ``SweepRun.progress``, so a killed sweep resumes after the last committed batch
and never repeats work; blobs are deleted before the transaction that removes their rows,
so a crash in between leaves rows whose blob is already gone (deleted again as a no-op),
never readable orphans. Every step is idempotent: done work drops out of the queries
(``anonymised_at``, ``redacted_at``, deleted rows). ``dry_run`` runs the same queries,
changes nothing and reports what would go. Each tenant's sweep is audited with counts only.
"""

from __future__ import annotations

import asyncio
import bisect
import calendar
import datetime as dt
import uuid
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import (
    DateTime,
    String,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from voicedesk.domain.errors import ErasedError, IntegrityError
from voicedesk.domain.retention import (
    OUTCOME_CATEGORIES,
    Action,
    DataCategory,
    RetentionPolicy,
    is_expired,
)
from voicedesk.privacy.holds import HeldSet, active_holds
from voicedesk.store.models import (
    Appointment,
    AuditEntry,
    Call,
    Consent,
    Contact,
    LegalHold,
    Message,
    OutboxMessage,
    Recording,
    Subject,
    SweepRun,
    Tenant,
    Turn,
)
from voicedesk.store.repos.subjects import read_contact
from voicedesk.store.repos.tenants import list_tenants, profile_of
from voicedesk.store.vault import Vault

__all__ = [
    "RETENTION_JOB",
    "SYSTEM",
    "SweepReport",
    "TenantRetention",
    "TenantSweep",
    "register_jobs",
    "run_sweep",
    "tenant_retention",
]

SYSTEM = "system:retention"
RETENTION_JOB = "retention-sweep"
# Metadata first: anonymising a call takes what is still attached to it along, so the
# recordings and transcripts walks that follow only meet calls that are still personal.
CALL_CATEGORIES = (DataCategory.CALL_METADATA, DataCategory.TRANSCRIPTS, DataCategory.RECORDINGS)
TENANT_CATEGORIES = (*CALL_CATEGORIES, DataCategory.CUSTOMER_DATA)
_FRINGE = dt.timedelta(days=4)
# Calls per batch (one transaction each). SQLite: one writer for the whole database, so a
# batch holds the write lock ≈ 1 s at 20,000 calls (50,000: ≈ 2 s). PostgreSQL locks only
# the batch's rows (expired calls and what hangs on them); larger batches halve the
# per-batch cost (1 M calls: 47,200 -> 52,700 records/s from 50,000 to 100,000).
SQLITE_BATCH = 20_000
POSTGRES_BATCH = 100_000


# --- per-tenant policy --------------------------------------------------------------------

@dataclass(frozen=True)
class TenantRetention:
    """A tenant's periods, what happens to transcripts after theirs, and the tenant's zone."""

    policy: RetentionPolicy = field(default_factory=RetentionPolicy)
    transcripts: Action = Action.DELETE
    timezone: str = "Europe/Berlin"


def tenant_retention(tenant: Tenant) -> TenantRetention:
    """The retention of ``tenant`` from its profile, held to the bounds the policy promises.

    The profile counts call metadata in days (the domain in months) and allows longer
    maxima than the privacy policy; values are mapped onto the domain's periods and
    clamped to its bounds, so a profile can never extend a promised maximum. A profile
    field ``retention.transcripts_after_expiry: anonymise`` (when the profile schema has
    it) keeps transcripts redacted instead of deleting them.
    """
    profile = profile_of(tenant)
    r = profile.retention
    policy = RetentionPolicy(
        recordings_days=min(365, max(30, r.recordings_days)),
        transcripts_days=min(365, max(7, r.transcripts_days)),
        call_metadata_months=min(12, max(1, round(r.call_metadata_days / 30.4375))),
        customer_data_years=min(10, max(0, r.customer_years_after_relationship)),
        logs_days=min(90, max(7, r.logs_days)),
    )
    mode = str(getattr(r, "transcripts_after_expiry", "delete")).lower()
    transcripts = Action.ANONYMISE if mode in {"anonymise", "anonymize", "redact"} else Action.DELETE
    return TenantRetention(policy, transcripts, profile.timezone)


# --- reports --------------------------------------------------------------------------------

Counts = dict[str, dict[str, int]]


def _add(counts: Counts, category: str, action: str, n: int) -> None:
    if n:
        bucket = counts.setdefault(category, {})
        bucket[action] = bucket.get(action, 0) + n


@dataclass
class TenantSweep:
    """One tenant's part of a sweep. ``counts`` are this invocation's; ``run_counts`` the run's so far."""

    tenant_id: uuid.UUID
    slug: str
    run_id: uuid.UUID | None
    resumed: bool = False
    complete: bool = False
    counts: Counts = field(default_factory=dict)
    run_counts: Counts = field(default_factory=dict)


@dataclass
class SweepReport:
    """What a sweep did (or, with ``dry_run``, would do): counts per category and action."""

    dry_run: bool
    at: dt.datetime
    tenants: list[TenantSweep] = field(default_factory=list)
    logs: dict[str, int] = field(default_factory=dict)
    complete: bool = True

    def totals(self) -> Counts:
        """Counts of this invocation summed over tenants, with the deployment-wide logs step."""
        out: Counts = {}
        for t in self.tenants:
            for category, actions in t.counts.items():
                for action, n in actions.items():
                    _add(out, category, action, n)
        for action, n in self.logs.items():
            _add(out, DataCategory.LOGS.value, action, n)
        return out

    @property
    def records(self) -> int:
        """Records removed or anonymised (or that would be); held and skipped ones excluded."""
        return sum(n for actions in self.totals().values() for a, n in actions.items()
                   if a != "held")


@dataclass
class _Batch:
    """Calls to process (rows) and a predicate that selects exactly them.

    With ``by_scope`` the rows' ids and start times are the raw SQLite column values (never
    turned into ``uuid.UUID`` or ``datetime``) and child tables are reached by
    ``call_id IN (SELECT id FROM calls WHERE scope)``; with ``array`` (PostgreSQL) by
    ``call_id = ANY(:ids)``.
    """

    calls: list[Any]
    scope: Any
    by_scope: bool = False
    array: bool = False
    _ids: list[uuid.UUID] | None = None

    def ids(self) -> list[uuid.UUID]:
        if self._ids is None:
            self._ids = [r.id if isinstance(r.id, uuid.UUID) else uuid.UUID(r.id) for r in self.calls]
        return self._ids

    def of(self, call_id: Any) -> Any:
        """A condition on a child table's ``call_id`` column: it belongs to one of the batch's calls.

        SQLite: the batch's key range as a subquery (the planner walks
        ``ix_calls_tenant_started`` and probes the child's ``call_id`` index), so no id list
        is shipped. PostgreSQL: explicit ids as one array parameter (``= ANY``, an index scan
        of the child's ``call_id`` index), because an IN (subquery) lets its planner pick a
        hash join over the whole child table per batch, which makes the sweep quadratic, and
        an IN list of thousands of parameters costs more to bind and plan than the work.
        """
        if self.by_scope:
            return call_id.in_(select(Call.id).where(self.scope).scalar_subquery())
        if self.array:
            return call_id == any_(bindparam(None, self.ids(), type_=postgresql.ARRAY(Uuid)))
        return call_id.in_(self.ids())


class _BudgetSpentError(Exception):
    """Raised internally when ``max_batches`` is reached (the run stays resumable)."""


BatchHook = Callable[[DataCategory, int], Awaitable[None] | None]


# --- date helpers ---------------------------------------------------------------------------

def _months_before(moment: dt.datetime, months: int) -> dt.datetime:
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _window(category: DataCategory, policy: RetentionPolicy, now: dt.datetime) -> dt.datetime:
    """An upper bound of reference times that may have expired at ``now``.

    Rows up to it are fetched and each is decided by ``domain.retention.is_expired``:
    for day periods the bound is exact; for months and years ``now`` minus the period is
    a safe lower edge and a few days more cover month-end clamping (31 Jan + 1 month =
    28 Feb).
    """
    amount, unit = policy.period(category)
    if unit == "days":
        return now - dt.timedelta(days=amount)
    return _months_before(now, amount if unit == "months" else 12 * amount) + _FRINGE


def _sure_cutoff(category: DataCategory, policy: RetentionPolicy, now: dt.datetime) -> dt.datetime:
    """Every reference time up to this has expired at ``now`` (see ``_window``)."""
    amount, unit = policy.period(category)
    if unit == "days":
        return now - dt.timedelta(days=amount)
    return _months_before(now, amount if unit == "months" else 12 * amount)


def _after_call(after: Sequence[str] | None, ts_col: Any, id_col: Any) -> Any:
    if not after:
        return None
    ts, hex_id = dt.datetime.fromisoformat(after[0]), uuid.UUID(after[1])
    # The plain lower bound lets the index seek to the cursor; the OR alone makes SQLite scan
    # from the start of the range on every batch.
    return and_(ts_col >= ts, or_(ts_col > ts, and_(ts_col == ts, id_col > hex_id)))


def _key(ts: dt.datetime, row_id: uuid.UUID) -> list[str]:
    return [ts.isoformat(), row_id.hex]


_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime in SQLite (UTC here)


def _sqlite_time(raw: str) -> dt.datetime:
    return dt.datetime.fromisoformat(raw).replace(tzinfo=dt.UTC)


def _sqlite_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(_SQLITE_TIME)


def _same(value: dt.datetime) -> dt.datetime:
    return value


# --- the sweep of one tenant ----------------------------------------------------------------

class _TenantSweeper:
    def __init__(
        self, vault: Vault, tenant: Tenant, retention: TenantRetention, now: dt.datetime, *, dry_run: bool,
        batch_size: int, budget: list[int] | None, on_batch: BatchHook | None,
    ) -> None:
        self.vault, self.tenant, self.retention, self.now = vault, tenant, retention, now
        self.tid = tenant.id
        self.policy = retention.policy
        self.zone = zoneinfo.ZoneInfo(retention.timezone)
        self.dry_run, self.batch_size, self.budget, self.on_batch = dry_run, batch_size, budget, on_batch
        self.result = TenantSweep(tenant.id, tenant.slug, None)
        self.progress: dict[str, Any] = {}
        self.held = HeldSet(frozenset(), frozenset())
        self.batches = 0
        self.floors: dict[str, str] = {}
        # Set once this invocation's metadata walk has finished: every call started before it
        # is anonymised (nothing personal left attached) or held. A dry run counts what
        # anonymising takes along and skips the same range, so its counts match the sweep's.
        self.anonymised_below: dt.datetime | None = None

    # progress --------------------------------------------------------------------------
    async def start(self) -> None:
        async with self.vault.db.transaction() as s:
            self.held = await active_holds(s, self.tid)
            await self._load_floors(s)
            if self.dry_run:
                return
            run = (await s.scalars(select(SweepRun).where(SweepRun.tenant_id == self.tid,
                                                          SweepRun.finished_at.is_(None))
                                   .order_by(SweepRun.started_at.desc()).limit(1))).first()
            if run is None:
                run = SweepRun(id=uuid.uuid4(), tenant_id=self.tid, started_at=self.now, cutoff_at=self.now,
                               progress={})
                s.add(run)
            else:
                # Resume: positions stay valid (the key order does not change); periods are
                # measured from the current time, so nothing expired meanwhile is missed.
                self.result.resumed = True
                self.progress = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (run.progress or {}).items()}
                run.cutoff_at = self.now
            self.result.run_id = run.id
        self.result.run_counts = {k: dict(v) for k, v in self.progress.get("counts", {}).items()}

    def _floor_tag(self, category: DataCategory) -> list[Any]:
        amount, unit = self.policy.period(category)
        mode = self.retention.transcripts.value if category is DataCategory.TRANSCRIPTS else ""
        return [amount, unit, mode]

    async def _load_floors(self, s: AsyncSession) -> None:
        """Where the last finished run left each call category, so old calls are not walked again.

        Valid only while the period (and transcript mode) is unchanged and no hold was
        released since that run started (released holds expose older records again).
        """
        prev = (await s.scalars(select(SweepRun).where(SweepRun.tenant_id == self.tid,
                                                       SweepRun.finished_at.is_not(None))
                                .order_by(SweepRun.finished_at.desc()).limit(1))).first()
        floors = (prev.progress or {}).get("floors", {}) if prev is not None else {}
        if not floors or prev is None:
            return
        released = await s.scalar(select(func.count()).select_from(LegalHold).where(
            LegalHold.tenant_id == self.tid, LegalHold.released_at.is_not(None),
            LegalHold.released_at >= prev.started_at))
        if released:
            return
        for category in CALL_CATEGORIES:
            floor = floors.get(category.value)
            if isinstance(floor, dict) and floor.get("tag") == self._floor_tag(category):
                self.floors[category.value] = str(floor["through"])

    def _new_floors(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for category in CALL_CATEGORIES:
            through = _sure_cutoff(category, self.policy, self.now)
            out[category.value] = {"through": through.isoformat(), "tag": self._floor_tag(category)}
        return out

    def _count(self, category: DataCategory, action: str, n: int) -> None:
        _add(self.result.counts, category.value, action, n)
        _add(self.result.run_counts, category.value, action, n)

    def _state(self, category: DataCategory) -> dict[str, Any]:
        state: dict[str, Any] = self.progress.setdefault(category.value, {})
        return state

    def _snapshot(self) -> dict[str, Any]:
        return {**{k: (dict(v) if isinstance(v, dict) else v) for k, v in self.progress.items()},
                "counts": {k: dict(v) for k, v in self.result.run_counts.items()}}

    async def _save_progress(self, s: AsyncSession) -> None:
        await s.execute(update(SweepRun).where(SweepRun.id == self.result.run_id)
                        .values(progress=self._snapshot()))

    async def _batch_done(self, category: DataCategory) -> None:
        self.batches += 1
        if self.on_batch is not None:
            maybe = self.on_batch(category, self.batches)
            if maybe is not None:
                await maybe
        if self.budget is not None:
            self.budget[0] -= 1
            if self.budget[0] <= 0:
                raise _BudgetSpentError

    async def _mark_done(self, category: DataCategory) -> None:
        self._state(category)["done"] = True
        if self.dry_run:
            return
        async with self.vault.db.transaction() as s:
            await self._save_progress(s)

    async def finish(self) -> None:
        self.result.complete = True
        if self.dry_run:
            return
        async with self.vault.db.transaction() as s:
            await s.execute(update(SweepRun).where(SweepRun.id == self.result.run_id)
                            .values(progress={**self._snapshot(), "floors": self._new_floors()},
                                    finished_at=self.vault.clock.now()))

    async def run(self) -> None:
        order = list(TENANT_CATEGORIES)
        if self.retention.transcripts is Action.ANONYMISE:
            # Redact before anonymising metadata, which would delete unredacted turns.
            order.remove(DataCategory.TRANSCRIPTS)
            order.insert(0, DataCategory.TRANSCRIPTS)
        for category in order:
            state = self._state(category)
            if state.get("done"):
                continue
            if category is DataCategory.RECORDINGS:
                await self._recordings(state)
            elif category is DataCategory.TRANSCRIPTS:
                await self._transcripts(state)
            elif category is DataCategory.CALL_METADATA:
                await self._metadata(state)
            else:
                await self._customers(state)
            await self._mark_done(category)
        await self.finish()

    def _expired(self, category: DataCategory, reference: dt.datetime) -> bool:
        return is_expired(category, self.policy, reference, self.now)

    # walking the calls ---------------------------------------------------------------
    async def _walk_calls(
        self, category: DataCategory, state: dict[str, Any], *columns: Any, where: Any = None,
        uuids: bool = False, having: Any = None, limit: int | None = None,
    ) -> AsyncIterator[_Batch]:
        """Batches of the tenant's calls whose ``category`` period has run out and no hold protects.

        Walks (started_at, id) from the cursor in ``state`` (or from the floor the last
        finished run left, see ``_load_floors``); each yielded batch advances the cursor,
        which the caller persists with the batch's changes. A batch's ``scope`` selects
        exactly its calls by key range (minus held and not-yet-expired ones), so the
        changes are set-based statements, not lists of ids. On SQLite (unless ``uuids``)
        ids come back as the stored hex text: they only go back into SQL, so no
        ``uuid.UUID`` is built per row. With ``having`` (a condition on the call, e.g. that a
        recording of it exists) only calls that meet it, or that a hold covers (to be counted
        as held), are fetched: calls with nothing left to remove are not shipped to Python;
        they stay inside the batch's key range, where the batch's statements find nothing of
        them to change.
        """
        upper = _window(category, self.policy, self.now)
        sure = _sure_cutoff(category, self.policy, self.now)
        if not state.get("after"):
            floor = self.floors.get(category.value)
            if floor:
                state["after"] = [floor, uuid.UUID(int=0).hex]
        if category is not DataCategory.CALL_METADATA and self.anonymised_below is not None:
            await self._skip_anonymised(category, state, self.anonymised_below, sure)
        dialect = self.vault.db.engine.dialect.name
        raw = not uuids and dialect == "sqlite"
        held_calls = {c.hex for c in self.held.calls} if raw else self.held.calls
        held_subjects = {c.hex for c in self.held.subjects} if raw else self.held.subjects
        id_cols: tuple[Any, Any, Any] = (
            (type_coerce(Call.id, String).label("id"), type_coerce(Call.subject_id, String).label("subject_id"),
             type_coerce(Call.started_at, String).label("started_at"))
            if raw else
            # PostgreSQL: asyncpg's own UUIDs (a uuid.UUID subclass) and aware UTC datetimes as
            # they come, without a result processor per value.
            (type_coerce(Call.id, NullType()).label("id"), type_coerce(Call.subject_id, NullType()).label("subject_id"),
             type_coerce(Call.started_at, DateTime(timezone=True)).label("started_at"))
            if dialect == "postgresql" and not uuids else (Call.id, Call.subject_id, Call.started_at))
        if not uuids and not held_subjects:  # the subject only matters for subject holds
            id_cols = (id_cols[0], null().label("subject_id"), id_cols[2])
        ts = _sqlite_time if raw else _same
        any_held = bool(held_calls or held_subjects)
        while True:
            q = (select(*id_cols, *columns)
                 .where(Call.tenant_id == self.tid, Call.started_at <= upper)
                 .order_by(Call.started_at, Call.id).limit(limit or self.batch_size))
            if where is not None:
                q = q.where(where)
            if having is not None:
                q = q.where(or_(having, Call.id.in_(self.held.calls), Call.subject_id.in_(self.held.subjects))
                            if any_held else having)
            cond = _after_call(state.get("after"), Call.started_at, Call.id)
            async with self.vault.db.engine.connect() as conn:  # Core rows: no ORM loading cost
                rows = (await conn.execute(q if cond is None else q.where(cond))).all()
            if not rows:
                return
            last, first = rows[-1], rows[0]
            todo: list[Any] = []
            skipped: list[Any] = []
            first_at, last_at = ts(first.started_at), ts(last.started_at)
            if last_at <= sure and not any_held:
                todo = list(rows)  # all expired, none held: no look at each row
            else:
                for r in rows:
                    at = ts(r.started_at)
                    if at > sure and not self._expired(category, at):
                        skipped.append(r.id)
                    elif r.id in held_calls or (r.subject_id is not None and r.subject_id in held_subjects):
                        self._count(category, "held", 1)
                        skipped.append(r.id)
                    else:
                        todo.append(r)
            last_id = uuid.UUID(last.id) if raw else last.id
            # Plain bounds first so the (tenant_id, started_at, id) index serves the range.
            scope = [Call.tenant_id == self.tid, Call.started_at >= first_at, Call.started_at <= last_at,
                     or_(Call.started_at < last_at, and_(Call.started_at == last_at, Call.id <= last_id))]
            if cond is not None:
                scope.append(cond)
            if where is not None:
                scope.append(where)
            if skipped:
                scope.append(Call.id.not_in([uuid.UUID(i) for i in skipped] if raw else skipped))
            state["after"] = _key(last_at, last_id)
            yield _Batch(todo, and_(*scope), by_scope=raw, array=dialect == "postgresql")

    async def _skip_anonymised(self, category: DataCategory, state: dict[str, Any], below: dt.datetime,
                               sure: dt.datetime) -> None:
        """Start ``category``'s walk at ``below``: every call before it is anonymised or held.

        The metadata walk of this invocation has just anonymised (and stripped of recordings
        and unredacted turns) every call that started before ``below`` and no hold protects,
        so walking those calls again would only read past them (at 1 M calls, half a million
        rows). Held calls in the skipped range are still counted as held, as the walk would.
        """
        after = state.get("after")
        if after and dt.datetime.fromisoformat(after[0]) >= below:
            return
        if self.held.calls or self.held.subjects:
            q = (select(Call.id, Call.subject_id, Call.started_at)
                 .where(Call.tenant_id == self.tid, Call.started_at < below, Call.anonymised_at.is_(None),
                        or_(Call.id.in_(self.held.calls), Call.subject_id.in_(self.held.subjects))))
            cond = _after_call(after, Call.started_at, Call.id)
            async with self.vault.db.engine.connect() as conn:
                rows = (await conn.execute(q if cond is None else q.where(cond))).all()
            for r in rows:
                if r.started_at <= sure or self._expired(category, r.started_at):
                    self._count(category, "held", 1)
        state["after"] = _key(below, uuid.UUID(int=0))

    # recordings ------------------------------------------------------------------------
    async def _recordings(self, state: dict[str, Any]) -> None:
        cat = DataCategory.RECORDINGS
        has_recording = select(Recording.id).where(Recording.call_id == Call.id).exists()
        async for batch in self._walk_calls(cat, state, where=Call.anonymised_at.is_(None), having=has_recording):
            if self.dry_run:
                self._count(cat, "deleted", await self._count_rows(Recording, batch) if batch.calls else 0)
                continue
            async with self.vault.db.transaction() as s:
                if batch.calls:
                    self._count(cat, "deleted", await self._delete_recordings(s, batch))
                await self._save_progress(s)
            await self._batch_done(cat)

    async def _count_rows(self, model: type[Recording] | type[Turn], batch: _Batch) -> int:
        q = select(func.count()).select_from(model).where(batch.of(model.call_id))
        if model is Turn:
            q = q.where(Turn.redacted_at.is_(None))
        async with self.vault.db.engine.connect() as conn:
            return int((await conn.execute(q)).scalar() or 0)

    async def _delete_recordings(self, s: AsyncSession, batch: _Batch, *, alongside: Any = None) -> int:
        """Blobs first, then rows (inside the batch's transaction): a crash never leaves a readable orphan.

        ``alongside(s)``, when given, runs the batch's other statements while the blobs are
        deleted (the blob deletion runs whenever those statements wait for the database);
        the recording rows go only after both.
        """
        blobs = (await s.scalars(select(Recording.blob_key).where(batch.of(Recording.call_id)))).all()
        if alongside is None:
            await self._delete_blobs(blobs)
        else:
            gone = asyncio.ensure_future(self._delete_blobs(blobs))
            try:
                await alongside(s)
            finally:
                await asyncio.wait([gone])  # never leave the deletion running past the batch
            gone.result()
        if not blobs:
            return 0
        return _rowcount(await s.execute(delete(Recording).where(batch.of(Recording.call_id))
                                         .execution_options(synchronize_session=False)))

    async def _delete_blobs(self, names: Sequence[str]) -> None:
        for name in names:
            await self.vault.blobs.delete(name)

    # transcripts -----------------------------------------------------------------------
    async def _transcripts(self, state: dict[str, Any]) -> None:
        cat = DataCategory.TRANSCRIPTS
        redact = self.retention.transcripts is Action.ANONYMISE
        has_turn = select(Turn.id).where(Turn.call_id == Call.id, Turn.redacted_at.is_(None)).exists()
        async for batch in self._walk_calls(cat, state, Call.language, Call.from_enc, Call.caller_name_enc,
                                            where=Call.anonymised_at.is_(None), uuids=redact, having=has_turn,
                                            # redaction holds a batch's turns in memory
                                            limit=min(self.batch_size, SQLITE_BATCH) if redact else None):
            if self.dry_run:
                if batch.calls:
                    self._count(cat, "redacted" if redact else "deleted", await self._count_rows(Turn, batch))
                continue
            if redact and batch.calls:
                await self._redact_turns(state, batch.calls)
            else:
                async with self.vault.db.transaction() as s:
                    if batch.calls:
                        res = await s.execute(delete(Turn).where(batch.of(Turn.call_id),
                                                                 Turn.redacted_at.is_(None))
                                              .execution_options(synchronize_session=False))
                        self._count(cat, "deleted", _rowcount(res))
                    await self._save_progress(s)
            await self._batch_done(cat)

    async def _stats_key(self, state: dict[str, Any]) -> uuid.UUID:
        """A data key that belongs to no person: redacted transcripts are encrypted under it."""
        raw = state.get("stats_key")
        if raw:
            return uuid.UUID(raw)
        key_id = await self.vault.keys.new_data_key(self.tid, self.vault.clock.now())
        state["stats_key"] = key_id.hex
        async with self.vault.db.transaction() as s:
            await self._save_progress(s)
        return key_id

    async def _contact_hints(self, calls: Sequence[Any]) -> dict[uuid.UUID, Any]:
        from voicedesk.privacy.redaction import ContactData as Hints

        keys = self.vault.keys
        subject_ids = {r.subject_id for r in calls if r.subject_id is not None}
        async with self.vault.db.sessions() as s:
            contacts = {c.subject_id: c for c in (await s.scalars(
                select(Contact).where(Contact.tenant_id == self.tid, Contact.subject_id.in_(subject_ids)))).all()}
        hints: dict[uuid.UUID, Any] = {}
        for r in calls:
            names: list[str] = []
            phones: list[str] = []
            emails: list[str] = []
            addresses: list[str] = []
            refs: list[str] = []
            try:
                number = await keys.decrypt(self.tid, r.from_enc, table="calls", row_id=r.id, column="from")
                caller = await keys.decrypt(self.tid, r.caller_name_enc, table="calls", row_id=r.id,
                                            column="caller_name")
                phones += [number] if number else []
                names += [caller] if caller else []
                contact = contacts.get(r.subject_id)
                if contact is not None:
                    data = await read_contact(keys, contact)
                    names += [n for n in (data.first_name, data.last_name, data.company) if n]
                    phones += [data.phone] if data.phone else []
                    emails += [data.email] if data.email else []
                    addresses += [data.address] if data.address else []
                    refs += [data.customer_ref] if data.customer_ref else []
            except (ErasedError, IntegrityError):
                hints[r.id] = None  # the person's key is gone: nothing readable is left to keep
                continue
            hints[r.id] = Hints(names=tuple(names), phones=tuple(phones), emails=tuple(emails),
                                addresses=tuple(addresses), customer_ids=tuple(refs))
        return hints

    async def _redact_turns(self, state: dict[str, Any], calls: Sequence[Any]) -> None:
        from voicedesk.privacy.redaction import LANGUAGES, default_redactor

        cat = DataCategory.TRANSCRIPTS
        keys = self.vault.keys
        stats_key = await self._stats_key(state)
        hints = await self._contact_hints(calls)
        language = {r.id: r.language for r in calls}
        fallback = profile_of(self.tenant).language
        async with self.vault.db.sessions() as s:
            turns = list((await s.scalars(select(Turn).where(Turn.call_id.in_(list(language)),
                                                             Turn.redacted_at.is_(None)))).all())
        plain: list[tuple[Turn, str | None]] = []
        for turn in turns:
            text: str | None = None
            if hints.get(turn.call_id) is not None:
                try:
                    text = await keys.decrypt(self.tid, turn.text_enc, table="turns", row_id=turn.id, column="text")
                except (ErasedError, IntegrityError):
                    text = None
            plain.append((turn, text))

        def redact_all() -> list[str | None]:
            redactor = default_redactor()
            out: list[str | None] = []
            for turn, text in plain:
                if text is None:
                    out.append(None)
                    continue
                lang = language[turn.call_id] if language[turn.call_id] in LANGUAGES else fallback
                out.append(redactor.redact(text, lang, contact=hints.get(turn.call_id)).text)
            return out

        redacted = await asyncio.to_thread(redact_all)
        now = self.vault.clock.now()
        gone: list[uuid.UUID] = []
        values: list[dict[str, Any]] = []
        for (turn, _), text in zip(plain, redacted, strict=True):
            if text is None:
                gone.append(turn.id)
                continue
            values.append({"id": turn.id, "redacted_at": now, "tool_calls_enc": None,
                           "text_enc": await keys.encrypt(self.tid, stats_key, text, table="turns",
                                                          row_id=turn.id, column="text")})
        async with self.vault.db.transaction() as s:
            if values:
                await s.execute(update(Turn), values)
            if gone:
                await s.execute(delete(Turn).where(Turn.id.in_(gone)))
            self._count(cat, "redacted", len(values))
            self._count(cat, "deleted", len(gone))
            await self._save_progress(s)

    # call metadata ---------------------------------------------------------------------
    async def _metadata(self, state: dict[str, Any]) -> None:
        cat = DataCategory.CALL_METADATA
        # A dry run counts recordings and turns with the calls whose anonymising takes them
        # along, and the later walks skip those calls, as in the sweep. Not where transcripts
        # are redacted: that walk has run first, and the dry run cannot tell which turns it
        # would have redacted, so there the later walks count everything (as before).
        along = self.retention.transcripts is Action.DELETE
        async for batch in self._walk_calls(cat, state, where=Call.anonymised_at.is_(None)):
            if self.dry_run:
                if batch.calls and along:  # what anonymising takes along, as ``_anonymise`` counts it
                    self._count(DataCategory.RECORDINGS, "deleted", await self._count_rows(Recording, batch))
                    self._count(DataCategory.TRANSCRIPTS, "deleted", await self._count_rows(Turn, batch))
                self._count(cat, "anonymised", len(batch.calls))
                continue
            await self._anonymise(batch)
            await self._batch_done(cat)
        if self.dry_run:
            if along:
                self.anonymised_below = _sure_cutoff(cat, self.policy, self.now)
            return
        if self.result.resumed:
            # A run begun before links were dropped per batch may have anonymised calls whose
            # appointments and messages still point at them. And the batches before the
            # resume ran under the holds of then (one may have been released since), so
            # only a walk wholly of this invocation vouches for the range before its cutoff.
            await self._unlink_anonymised_calls()
            return
        self.anonymised_below = _sure_cutoff(cat, self.policy, self.now)

    def _days(self, calls: Sequence[Any], raw: bool) -> list[dt.date]:
        """The dates (in the tenant's zone) that ``calls``, in start order, fall on.

        The date ``anonymise_call_metadata`` keeps (``started_at`` in the tenant's zone,
        ``.date()``), looked up once per date: a binary search finds the first call after
        each date's end instead of converting every call. With ``raw`` the start times are
        SQLite's stored text, whose order is the times' order, and the day's end is written
        the same way.
        """
        out: list[dt.date] = []
        i, n = 0, len(calls)
        while i < n:
            start = _sqlite_time(calls[i].started_at) if raw else calls[i].started_at
            day = start.astimezone(self.zone).date()
            out.append(day)
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=self.zone)
            bound: Any = _sqlite_text(end) if raw else end
            i = bisect.bisect_left(calls, bound, lo=i + 1, key=lambda r: r.started_at)
        return out

    async def _anonymise(self, batch: _Batch) -> None:
        async def detach(s: AsyncSession) -> None:  # runs while the batch's blobs are deleted
            res = await s.execute(delete(Turn).where(batch.of(Turn.call_id), Turn.redacted_at.is_(None))
                                  .execution_options(synchronize_session=False))
            self._count(DataCategory.TRANSCRIPTS, "deleted", _rowcount(res))
            for model in (Consent, Appointment, Message):  # each through its call_id index
                await s.execute(update(model).where(batch.of(model.call_id)).values(call_id=None)
                                .execution_options(synchronize_session=False))

        async with self.vault.db.transaction() as s:
            if batch.calls:
                # Everything attached goes first: the calls' anonymising takes them out of
                # ``batch.scope`` (no longer ``anonymised_at IS NULL``, other start times).
                recordings = await self._delete_recordings(s, batch, alongside=detach)
                self._count(DataCategory.RECORDINGS, "deleted", recordings)
                now = self.vault.clock.now()
                if not batch.by_scope and self.vault.db.engine.dialect.name == "postgresql":
                    # The start of each call's day in the tenant's zone, computed by the database:
                    # one statement for the batch instead of one per day.
                    zone = self.retention.timezone
                    day_start = func.timezone(zone, func.date_trunc("day", func.timezone(zone, Call.started_at)))
                    await s.execute(anonymise_calls_statement(batch.scope, day_start, now))
                else:
                    for day in self._days(batch.calls, batch.by_scope):  # a batch spans few days: one each
                        start = dt.datetime.combine(day, dt.time(), tzinfo=self.zone)
                        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=self.zone)
                        scope = and_(batch.scope, Call.started_at >= start, Call.started_at < end)
                        await s.execute(anonymise_calls_statement(scope, start.astimezone(dt.UTC), now))
                self._count(DataCategory.CALL_METADATA, "anonymised", len(batch.calls))
            await self._save_progress(s)

    async def _unlink_anonymised_calls(self) -> None:
        """Appointments and messages keep no link to any anonymised call (one statement each)."""
        if self.dry_run:
            return
        async with self.vault.db.transaction() as s:
            for model in (Appointment, Message):
                # Per still-linked row a probe of the call (not a scan of every anonymised call
                # ever): once unlinked, rows drop out, so the statement stays cheap sweep after sweep.
                anonymised = (select(Call.id).where(Call.id == model.call_id, Call.tenant_id == self.tid,
                                                    Call.anonymised_at.is_not(None)).exists())
                await s.execute(update(model).where(model.tenant_id == self.tid, model.call_id.is_not(None),
                                                    anonymised).values(call_id=None)
                                .execution_options(synchronize_session=False))

    # customer data ---------------------------------------------------------------------
    async def _customers(self, state: dict[str, Any]) -> None:
        cat = DataCategory.CUSTOMER_DATA
        upper = _window(cat, self.policy, self.now)
        due = or_(and_(Subject.relationship_ended_at.is_not(None), Subject.relationship_ended_at <= upper),
                  and_(Subject.relationship_ended_at.is_(None), Subject.last_contact_at <= upper))
        while True:
            q = (select(Subject.id, Subject.key_id, Subject.relationship_ended_at, Subject.last_contact_at)
                 .where(Subject.tenant_id == self.tid, due).order_by(Subject.id).limit(self.batch_size))
            after = state.get("after")
            if after:
                q = q.where(Subject.id > uuid.UUID(after[0]))
            async with self.vault.db.sessions() as s:
                rows = (await s.execute(q)).all()
            if not rows:
                return
            todo = []
            for r in rows:
                if not self._expired(cat, r.relationship_ended_at or r.last_contact_at):
                    continue
                if self.held.covers_subject(r.id):
                    self._count(cat, "held", 1)
                else:
                    todo.append(r)
            state["after"] = [rows[-1].id.hex]
            if self.dry_run:
                self._count(cat, "deleted", len(todo))
                continue
            await self._delete_subjects(todo)
            await self._batch_done(cat)

    async def _delete_subjects(self, todo: Sequence[Any]) -> None:
        cat = DataCategory.CUSTOMER_DATA
        now = self.vault.clock.now()
        for r in todo:
            # The key goes first: a crash before the rows are deleted leaves only unreadable
            # rows, which the resumed sweep deletes without shredding (and ledgering) twice.
            if await self.vault.keystore.get_data_key(r.key_id) is not None:
                await self.vault.keys.shred(self.tid, r.id, r.key_id, now, request_id="retention")
        ids = [r.id for r in todo]
        async with self.vault.db.transaction() as s:
            if ids:
                for model, action in ((Appointment, "appointments"), (Message, "messages"),
                                      (Contact, "contacts")):
                    res = await s.execute(delete(model).where(model.tenant_id == self.tid,
                                                              model.subject_id.in_(ids)))
                    self._count(cat, action, _rowcount(res))
                await s.execute(delete(OutboxMessage).where(OutboxMessage.tenant_id == self.tid,
                                                            OutboxMessage.subject_id.in_(ids)))
                res = await s.execute(delete(Subject).where(Subject.tenant_id == self.tid, Subject.id.in_(ids)))
                self._count(cat, "deleted", _rowcount(res))
            await self._save_progress(s)


def anonymised_duration_sql(column: Any) -> Any:
    """``anonymise_call_metadata``'s duration rule in SQL: whole seconds rounded to 10, halves to even.

    Python's ``round`` rounds halves to even, so 5 -> 0, 15 -> 20, 25 -> 20; a test checks
    this expression against the domain function on every duration up to an hour.
    """
    return case((column % 20 == 5, column - 5), else_=(column + 5) // 10 * 10)


def anonymised_outcome_sql(column: Any) -> Any:
    """``anonymise_call_metadata``'s outcome rule in SQL: outside ``OUTCOME_CATEGORIES`` becomes ``other``."""
    return case((column.in_(sorted(OUTCOME_CATEGORIES)), column), else_=literal("other"))


def anonymise_calls_statement(scope: Any, day: Any, now: dt.datetime) -> Any:
    """One set-based UPDATE that anonymises the calls in ``scope``, all started on ``day``.

    ``day`` is the start of that day, or an SQL expression giving each call's (PostgreSQL).

    Kept: the date (as the start of that day in the tenant's zone), the duration rounded
    and the outcome category (both by the domain's rules, see above), direction, status and
    language. Dropped: numbers, names, summary, carrier id, subject link, exact times.
    """
    return (update(Call).where(scope).values(
        started_at=day, duration_s=anonymised_duration_sql(Call.duration_s),
        outcome=anonymised_outcome_sql(Call.outcome), anonymised_at=now, subject_id=None, from_enc=None,
        caller_name_enc=None, summary_enc=None, provider_call_id=None, to_number=None, answered_at=None,
        ended_at=None, instance_id=None, recording_consent=None, twiml_answer=None,
    ).execution_options(synchronize_session=False))


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# --- logs -------------------------------------------------------------------------------------

async def _sweep_logs(vault: Vault, periods: Sequence[RetentionPolicy], now: dt.datetime, *,
                      dry_run: bool) -> dict[str, int]:
    """Cut the access log (one chain for the deployment) behind a signed checkpoint.

    The chain can only lose a prefix, so the cut uses the longest logs period any tenant
    configured (never more than the promised 90 days). Finished sweep runs older than
    that go too.
    """
    days = max((p.logs_days for p in periods), default=RetentionPolicy().logs_days)
    before = now - dt.timedelta(days=days)
    if dry_run:
        async with vault.db.sessions() as s:
            n = await s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.at < before))
        return {"deleted": int(n or 0)}
    cut = await vault.audit.cut_before(before)
    async with vault.db.transaction() as s:
        await s.execute(delete(SweepRun).where(SweepRun.finished_at.is_not(None), SweepRun.finished_at < before))
    return {"deleted": cut} if cut else {}


# --- entry points -----------------------------------------------------------------------------

async def run_sweep(
    vault: Vault, *, tenant_id: uuid.UUID | None = None, dry_run: bool = False, batch_size: int | None = None,
    max_batches: int | None = None, on_batch: BatchHook | None = None,
    retention_of: Callable[[Tenant], TenantRetention] = tenant_retention, actor: str = SYSTEM,
) -> SweepReport:
    """Apply every tenant's retention (or one tenant's) as of ``vault.clock.now()``.

    ``max_batches`` stops after that many committed batches, leaving the run resumable
    (the report says ``complete=False``); ``on_batch(category, n)`` is called after each
    committed batch. The access-log cut runs only in a sweep over all tenants.
    """
    if batch_size is None:
        batch_size = SQLITE_BATCH if vault.db.is_sqlite else POSTGRES_BATCH
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = vault.clock.now()
    report = SweepReport(dry_run=dry_run, at=now)
    async with vault.db.sessions() as s:
        tenants = [t for t in await list_tenants(s) if tenant_id is None or t.id == tenant_id]
    budget = [max_batches] if max_batches is not None else None
    policies: list[RetentionPolicy] = []
    for tenant in tenants:
        retention = retention_of(tenant)
        policies.append(retention.policy)
        sweeper = _TenantSweeper(vault, tenant, retention, now, dry_run=dry_run, batch_size=batch_size,
                                 budget=budget, on_batch=on_batch)
        report.tenants.append(sweeper.result)
        await sweeper.start()
        stopped = False
        try:
            await sweeper.run()
        except _BudgetSpentError:
            stopped = True
        finally:
            await vault.audit.record(
                actor=actor, action="retention.dry_run" if dry_run else "retention.sweep", tenant_id=tenant.id,
                object_type="sweep_run", object_id=sweeper.result.run_id,
                details={"complete": sweeper.result.complete, "resumed": sweeper.result.resumed,
                         "counts": sweeper.result.counts},
            )
        if stopped:
            report.complete = False
            return report
    if tenant_id is None:
        report.logs = await _sweep_logs(vault, policies, now, dry_run=dry_run)
    return report


class JobRegistry(Protocol):
    """What ``register_jobs`` needs of a scheduler (``jobs.scheduler.Scheduler`` fits)."""

    def register(self, name: str, interval_s: float, fn: Callable[[], Awaitable[object]]) -> object: ...


def register_jobs(scheduler: JobRegistry, vault: Vault, *, interval_s: float = 3600.0) -> None:
    """Run the retention sweep on ``scheduler`` every ``interval_s`` (default hourly)."""

    async def sweep() -> SweepReport:
        return await run_sweep(vault)

    scheduler.register(RETENTION_JOB, interval_s, sweep)
