"""Issue 17, item 1: what anyone can read without a login carries nothing a person wrote.

The probe of the issue: a chat ticket whose text holds a name, a room number, a
full-width phone number, an e-mail address and a spaced 身份证 number, answered
by staff. Open311's public GET must not list it (it was never meant to be
public), must not show it by number, and what it does list (Open311 reports,
tickets staff published a note for) carries category, district, status, dates
and the public note only. The open-data page and files carry no ticket text.
"""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from bot.supervision import apikeys
from bot.tickets import Actor, NewTicket, TicketStore
from tests.supervision import conftest as _supervision
from tests.supervision.conftest import Clock
from tests.supervision.helpers import login

# the supervision tests' fixtures: a console on a fresh store, SQLite and PostgreSQL
app = _supervision.app
clock = _supervision.clock
database_url = _supervision.database_url
db_url = _supervision.db_url
pg_url = _supervision.pg_url
settings = _supervision.settings
sqlite_template = _supervision.sqlite_template
store = _supervision.store

STAFF = Actor("department", "env1", "市生态环境局")
SECRETS = ("王建国", "501室", "１３９１２３４５６７８", "13912345678", "wjg@example.com",
           "430102 1980 0101 1234", "已派人清理楼道杂物")
CHAT_TEXT = (
    "我叫王建国，住A2区幸福路8号3栋501室，楼道堆满杂物。电话１３９１２３４５６７８，"
    "邮箱 wjg@example.com，身份证 430102 1980 0101 1234"
)


def _chat_ticket(store: TicketStore) -> str:
    view = store.create(
        NewTicket(
            channel="wechat",
            kind="complaint",
            summary=CHAT_TEXT[:60],
            description=CHAT_TEXT,
            sender_id="wechat:o-abc",
            place="A2区幸福路8号3栋501室",
            name="王建国",
            category="环境保护",
            category_confidence=0.95,
        )
    )
    store.start(view.number, STAFF)
    store.reply(view.number, "已派人清理楼道杂物", STAFF)
    return view.number


def _clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def test_open311_does_not_list_or_show_a_chat_ticket(app: Any, store: TicketStore) -> None:
    number = _chat_ticket(store)
    public = TestClient(app)
    listed = public.get("/open311/v2/requests.json")
    assert listed.status_code == 200 and listed.json() == []
    for fmt in ("json", "xml"):
        one = public.get(f"/open311/v2/requests/{number}.{fmt}")
        assert one.status_code == 404
        _clean(one.text)
    assert public.get(f"/open311/v2/requests.json?service_request_id={number}").json() == []


def test_a_published_note_is_the_only_text_shown(app: Any, store: TicketStore) -> None:
    number = _chat_ticket(store)
    # staff publish through the console like any action (CSRF, roles, audit)
    client, token = login(app, "env1")
    done = client.post(
        f"/api/tickets/{number}/actions/publish",
        json={"text": "楼道杂物已清理。联系人王建国，电话13912345678"},
        headers={"X-CSRF-Token": token},
    )
    assert done.status_code == 200, done.text
    public = TestClient(app)
    [row] = public.get("/open311/v2/requests.json").json()
    assert row["service_request_id"] == number and row["status"] == "open"
    assert row["service_code"] == "环境保护" and row["address"] == "A2区"
    assert row["status_notes"].startswith("楼道杂物已清理")
    assert row["description"] is None and row["lat"] is None and row["media_url"] is None
    xml = public.get("/open311/v2/requests.xml").text
    _clean(str(row) + xml)
    history = [e["action"] for e in store.history(number)]
    assert history[-1] == "publish"
    # withdrawing the note takes the ticket off the public list again
    withdrawn = client.post(
        f"/api/tickets/{number}/actions/publish", json={"text": ""},
        headers={"X-CSRF-Token": token},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert public.get("/open311/v2/requests.json").json() == []


def test_an_open311_report_is_listed_without_its_text(app: Any, store: TicketStore) -> None:
    key = apikeys.issue(store.engine, "civic-app")
    public = TestClient(app)
    posted = public.post(
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "环境保护",
            "address_string": "A2区幸福路8号3栋501室",
            "lat": "28.19412",
            "long": "112.97654",
            "description": CHAT_TEXT,
            "first_name": "建国",
            "last_name": "王",
            "phone": "13912345678",
            "media_url": "https://img.example.com/wjg.jpg",
        },
    )
    assert posted.status_code == 201, posted.text
    [row] = public.get("/open311/v2/requests.json").json()
    assert row["address"] == "A2区" and row["description"] is None
    assert row["lat"] is None and row["long"] is None and row["media_url"] is None
    _clean(public.get("/open311/v2/requests.json").text + public.get(
        "/open311/v2/requests.xml").text)


def test_open_data_carries_no_ticket_text(app: Any, store: TicketStore, clock: Clock) -> None:
    for _ in range(6):
        _chat_ticket(store)
    public = TestClient(app)
    for path in ("/open-data?since=2026-11-01&until=2026-11-25",
                 "/open-data/data.csv?since=2026-11-01&until=2026-11-25",
                 "/open-data/data.json?since=2026-11-01&until=2026-11-25&period=all"):
        answer = public.get(path)
        assert answer.status_code == 200, answer.text
        _clean(answer.text)
        assert "幸福路" not in answer.text and "楼道" not in answer.text
