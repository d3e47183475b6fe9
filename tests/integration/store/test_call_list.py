"""The dashboard's call list (``store.repos.calls.list_calls``): keyset pages, newest first."""

from __future__ import annotations

import datetime as dt
import uuid

from tests.support.factories import make_tenant

from voicedesk.store.models import Call
from voicedesk.store.repos import calls as call_repo
from voicedesk.store.vault import Vault


async def test_cursor_pages_cover_every_call_once_in_order_with_ties_and_status(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    other = await make_tenant(vault, slug="harbor-auto")
    base = vault.clock.now()
    calls = []
    async with vault.db.transaction() as s:
        for i in range(23):
            # pairs of calls share a start time, so the id breaks ties across page borders
            c = Call(id=uuid.uuid4(), tenant_id=tenant.id, language="de",
                     started_at=base - dt.timedelta(minutes=i // 2), status="failed" if i % 3 == 0 else "completed")
            calls.append(c)
            s.add(c)
        s.add(Call(id=uuid.uuid4(), tenant_id=other.id, language="de", status="completed", started_at=base))
    expected = sorted(calls, key=lambda c: (c.started_at, c.id), reverse=True)
    for status in (None, "failed"):
        want = [c.id for c in expected if status is None or c.status == status]
        got: list[uuid.UUID] = []
        cursor = None
        async with vault.db.sessions() as s:
            while True:
                rows, cursor = await call_repo.list_calls(s, tenant.id, status=status, limit=4, after=cursor)
                got += [r.id for r in rows]
                if cursor is None:
                    break
                cursor = call_repo.CallCursor.decode(cursor.encode())  # as the dashboard round-trips it
        assert got == want
