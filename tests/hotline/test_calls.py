"""What a supervisor checks after an ingest: which calls became tickets, of what kind,
which were answered on the spot, and that nothing was dropped.

The calls (``calls.yml``) were written for these tests in phrasings that are not in
the training data: dialect, long rambling calls, consultations the agent answered,
complaints nobody answered, a question followed by a complaint, emergencies in
several wordings, agents handing over to 110/119/120. They go through the whole
path (file → reader → the real trained model → understanding → the real SQLite
ticket store), together with broken lines that must be reported by line number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.tickets.models import Status
from bot.tickets.store import TicketStore
from connectors.hotline import IngestSummary, ingest_file
from connectors.hotline.vocabulary import SPEAKER_LABELS
from tests.hotline.conftest import call, write_jsonl

CALLS = yaml.safe_load((Path(__file__).parent / "calls.yml").read_text(encoding="utf-8"))
CASE_KINDS = {"complaint", "report", "help", "suggestion", "inquiry", "emergency"}


def turns_of(lines: list[str]) -> list[tuple[str, str]]:
    """``坐席：…`` / ``市民：…`` lines → (speaker, text)."""
    turns = []
    for line in lines:
        label, text = line.split("：", 1)
        turns.append((SPEAKER_LABELS[label], text))
    return turns


def expected(entry: dict[str, Any]) -> set[str]:
    value = entry["expect"]
    return set(value) if isinstance(value, list) else {value}


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory, nlu: Any
) -> tuple[IngestSummary, TicketStore]:
    """All calls in one file, with a broken line and a silent call among them."""
    from cryptography.fernet import Fernet

    from bot.settings import load_settings

    tmp = tmp_path_factory.mktemp("calls")
    rows: list[dict[str, Any] | str] = [
        call(entry["id"], *turns_of(entry["turns"]), agent="话务员07") for entry in CALLS
    ]
    rows.insert(3, '{"call_id": "BROKEN", "turns": [{"speaker": "citizen", "text": "着火')
    rows.insert(10, call("SILENT", ("agent", "您好，12345热线，请讲。"), ("agent", "喂？您好？")))
    path = write_jsonl(tmp / "calls.jsonl", rows)
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'tickets.db'}",
        "PII_KEY": Fernet.generate_key().decode(),
        "TIMEZONE": "Asia/Shanghai",
        "TICKET_PREFIX": "GD",
        "ROUTING_THRESHOLD": "0.6",
        "VAR_DIR": str(tmp / "var"),
    }
    store = TicketStore(env["DATABASE_URL"], settings=load_settings(env))
    summary = ingest_file(path, "calls.jsonl", store=store, nlu=nlu)
    yield summary, store
    store.dispose()


def outcomes(store: TicketStore) -> dict[str, str]:
    """call id → ticket kind, or ``contact`` for a resolved contact."""
    found = {view.source: view.kind for view in store.list(limit=1000)}
    for contact in store.resolved(limit=1000):
        assert contact["source"] not in found, "a call is both a ticket and a contact"
        found[contact["source"]] = "contact"
    return found


def test_nothing_dropped_and_broken_lines_reported(
    ingested: tuple[IngestSummary, TicketStore],
) -> None:
    summary, store = ingested
    assert summary.calls_read == len(CALLS) + 1  # the silent call is read, not recorded
    assert summary.tickets_created + summary.resolved_contacts == len(CALLS)
    assert [(p.line, p.call_id) for p in summary.errors] == [(4, None), (11, "SILENT")]
    assert summary.warnings == []
    assert set(outcomes(store)) == {entry["id"] for entry in CALLS}


def test_every_call_is_what_a_supervisor_would_call_it(
    ingested: tuple[IngestSummary, TicketStore],
) -> None:
    _, store = ingested
    found = outcomes(store)
    facts = {view.source: view.facts for view in store.list(limit=1000)}
    wrong = [
        f"{entry['id']}: {found.get(entry['id'])} (reason "
        f"{facts.get(entry['id'], {}).get('reason', 'answered')}), expected "
        f"{sorted(expected(entry))}: {entry['why']}"
        for entry in CALLS
        if found.get(entry["id"]) not in expected(entry)
    ]
    assert not wrong, f"{len(wrong)} of {len(CALLS)} calls misread:\n" + "\n".join(wrong)


def test_consultations_answered_on_the_call_are_contacts_with_nothing_personal(
    ingested: tuple[IngestSummary, TicketStore],
) -> None:
    _, store = ingested
    contacts = {c["source"]: c for c in store.resolved(limit=1000)}
    answered = [e["id"] for e in CALLS if expected(e) == {"contact"}]
    assert set(answered) <= set(contacts)
    for call_id in answered:
        contact = contacts[call_id]
        assert contact["kind"] == "inquiry" and contact["channel"] == "hotline"
        # a question, or nothing asked at all (a hang-up): never a case intent
        assert contact["intent"] not in {"complain", "report", "request_help", "suggest"}
        assert contact["summary"] and len(contact["summary"]) <= 120
        assert contact["agent"] == "话务员07"
    # the record is the call as written: traditional characters, full-width punctuation
    assert "護照" in contacts["ASK-PASSPORT-TRADITIONAL"]["summary"]


def test_emergencies_are_routed_at_once_never_left_in_the_manual_queue(
    ingested: tuple[IngestSummary, TicketStore],
) -> None:
    _, store = ingested
    views = {v.source: v for v in store.list(limit=1000)}
    emergencies = [e["id"] for e in CALLS if expected(e) == {"emergency"}]
    assert len(emergencies) >= 10
    for call_id in emergencies:
        view = views[call_id]
        assert view.kind == "emergency", (call_id, view.facts.get("reason"))
        assert view.department, f"{call_id} waits for manual dispatch"
        assert view.status != Status.RECEIVED
        assert view.facts["reason"].startswith("emergency:")
    # the rules' finding travels with the ticket: which number, which words
    fire = views["FIRE-GARAGE"]
    assert fire.facts["danger"]["response"] == "utter_emergency_fire"
    assert fire.facts["danger"]["keyword"] in fire.description
    assert "着火了！我们小区地下车库有辆电动车起火了，烟很大！" in fire.description


def test_tickets_carry_the_call_and_the_deciding_reason(
    ingested: tuple[IngestSummary, TicketStore],
) -> None:
    _, store = ingested
    for view in store.list(limit=1000):
        assert view.kind in CASE_KINDS
        assert view.channel == "hotline" and view.facts["call_id"] == view.source
        assert view.facts["reason"]
        assert [t["speaker"] for t in view.transcript][:1] in (["agent"], ["citizen"])
    streetlight = next(v for v in store.list(limit=1000) if v.source == "STREETLIGHT-NO-ANSWER")
    assert "路灯" in streetlight.summary
