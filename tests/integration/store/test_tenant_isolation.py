"""R-11.3: no repository function lets one tenant read another's rows."""

from __future__ import annotations

import uuid

import pytest
from tests.support.factories import make_tenant

from voicedesk.domain.errors import NotFoundError
from voicedesk.store.models import Call
from voicedesk.store.repos import calls as call_repo
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.repos import users as user_repo
from voicedesk.store.vault import Vault


@pytest.mark.req("R-11.3")
async def test_other_tenants_rows_look_exactly_like_missing_ones(vault: Vault) -> None:
    a = await make_tenant(vault)
    b = await make_tenant(vault, slug="harbor-auto")
    now = vault.clock.now()
    phone = "+4917611112222"
    async with vault.db.transaction() as s:
        subject = await subject_repo.add_subject(s, vault.keys, a.id, now=now, phone=phone)
        await subject_repo.upsert_contact(s, vault.keys, subject, subject_repo.ContactData(first_name="Ada"), now)
        call = Call(id=uuid.uuid4(), tenant_id=a.id, subject_id=subject.id, language="de", status="completed",
                    started_at=now)
        s.add(call)
        key, _token = await user_repo.add_api_key(s, a.id, name="n8n", scopes=["calls:read"], now=now)
    async with vault.db.sessions() as s:
        assert (await call_repo.get_call(s, a.id, call.id)).id == call.id
        errors = []
        for fn in (lambda: call_repo.get_call(s, b.id, call.id), lambda: call_repo.get_call(s, b.id, uuid.uuid4()),
                   lambda: subject_repo.get_subject(s, b.id, subject.id),
                   lambda: user_repo.revoke_api_key(s, b.id, key.id, now)):
            with pytest.raises(NotFoundError) as exc:
                await fn()
            errors.append(exc.value.to_dict())
        assert errors[0] == errors[1]
        assert await subject_repo.find_subject_by_phone(s, vault.keys, b.id, phone) is None
        assert await subject_repo.get_contact(s, b.id, subject.id) is None
        assert await call_repo.list_turns(s, b.id, call.id) == []
        assert (await call_repo.list_calls(s, b.id))[0] == []
        assert len((await call_repo.list_calls(s, a.id))[0]) == 1
        assert await user_repo.list_api_keys(s, b.id) == []
        # blind indexes are keyed per tenant: the same number gives different index values
        assert await vault.keys.blind_index(a.id, "phone", phone) != await vault.keys.blind_index(b.id, "phone", phone)
