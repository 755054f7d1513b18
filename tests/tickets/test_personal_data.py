"""Personal data: encrypted at rest, masked in every listing, purged, re-keyed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from bot.settings import load_settings
from bot.tickets import TicketError, TicketStore
from tests.tickets.conftest import Clock, run_cli
from tests.tickets.helpers import CITIZEN, ENV_STAFF, ID_NUMBER, NAME, PHONE, complaint

SECRETS = (PHONE, ID_NUMBER, NAME, "19491231")


def _raw_rows(store: TicketStore) -> str:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT phone_enc, id_number_enc, name_enc FROM tickets")).all()
        events = conn.execute(text("SELECT reason, payload FROM ticket_events")).all()
    return repr(rows) + repr(events)


def test_encrypted_at_rest_and_masked_in_listings(store: TicketStore, env: dict[str, str]) -> None:
    ticket = store.create(complaint())
    raw = _raw_rows(store)
    for secret in SECRETS:
        assert secret not in raw
    view = store.list()[0]
    assert (view.masked_phone, view.masked_name) == ("138****5678", "张**")
    assert view.masked_id_number == "110105********002X"
    public = json.dumps(view.public_dict(), ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in public
    code, out, err = run_cli(env, "tickets", "list", "--json")
    assert code == 0, err
    [listed] = json.loads(out)
    assert listed["number"] == ticket.number
    for key in ("status", "channel", "category", "department", "created_at", "summary", "source"):
        assert key in listed
    assert listed["created_at"].startswith("2026-11-27T10:00:00")
    for secret in SECRETS:
        assert secret not in out
    code, out, _ = run_cli(env, "tickets", "show", ticket.number.lower(), "--json")
    assert code == 0 and ticket.number in out
    for secret in SECRETS:
        assert secret not in out
    code, out, _ = run_cli(env, "tickets", "list", "--department", "市生态环境局")
    assert code == 0 and ticket.number in out
    for secret in SECRETS:
        assert secret not in out
    code, _out, err = run_cli(env, "tickets", "show", "GD20000101-0001")
    assert code == 1 and "not found" in err


def test_purge_after_retention_keeps_the_anonymised_record(
    store: TicketStore, clock: Clock
) -> None:
    old = store.create(complaint())
    store.reply(old.number, "已处理", ENV_STAFF)
    store.rate(old.number, 4, True, f"谢谢，有事打{PHONE}", CITIZEN)
    open_ticket = store.create(complaint(summary="另一件：路灯不亮", place="光明路"))
    clock.advance(days=store.settings.ticket_retention_days - 1)
    assert store.purge() == []
    clock.advance(days=2)
    assert store.purge() == [old.number]
    assert store.purge() == []
    with store.engine.connect() as conn:
        row = (
            conn.execute(text("SELECT * FROM tickets WHERE number = :n"), {"n": old.number})
            .mappings()
            .one()
        )
    assert row["phone_enc"] is None and row["name_enc"] is None and row["id_number_enc"] is None
    assert row["sender_id"] is None and row["purged_at"] is not None
    assert PHONE not in repr(dict(row)) and ID_NUMBER not in repr(dict(row))
    purged = store.get(old.number)
    assert purged.status.value == "closed" and purged.purged and purged.summary
    assert store.get(open_ticket.number).masked_phone == "138****5678"
    assert store.verify_audit() == []
    assert store.history(old.number)[-1]["action"] == "purge"


def test_cli_purge(store: TicketStore, env: dict[str, str]) -> None:
    code, out, err = run_cli(env, "tickets", "purge", "--days", "0")
    assert code == 0, err
    assert "0 ticket" in out


def test_key_rotation(
    store: TicketStore, env: dict[str, str], pii_keys: list[str], clock: Clock
) -> None:
    ticket = store.create(complaint())
    new_key, old_key = pii_keys[1], pii_keys[0]
    rotated_env = {**env, "PII_KEY": f"{new_key},{old_key}"}
    code, out, err = run_cli(rotated_env, "keys", "rotate")
    assert code == 0, err
    assert "1 ticket" in out
    only_new = TicketStore(
        store.url, settings=load_settings({**env, "PII_KEY": new_key}), clock=clock
    )
    try:
        assert only_new.contact(ticket.number, ENV_STAFF).phone == PHONE
        assert only_new.verify_audit() == []
    finally:
        only_new.dispose()
    with pytest.raises(TicketError):
        store.contact(ticket.number, ENV_STAFF)  # the old key alone no longer decrypts
    assert store.get(ticket.number).masked_phone == "******"
