"""Open311 GeoReport v2: field lists from the spec, keys, a POSTed report's life, list filters.

Runs on SQLite and on the real PostgreSQL (the store fixture of ``conftest``):
the list filters are SQL over naive-UTC times, checked here against plain
queries, including windows given with a UTC offset.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from sqlalchemy import select
from starlette.testclient import TestClient

from bot.supervision import apikeys
from bot.tickets import Actor, NewTicket, TicketStore
from bot.tickets.schema import tickets
from tests.supervision.conftest import NOW, Clock
from tests.supervision.helpers import login

UTC = timezone.utc

# GeoReport v2 (http://wiki.open311.org/GeoReport_v2), response fields
SERVICE_FIELDS = {
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
}
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
POST_FIELDS = {"service_request_id", "token", "service_notice", "account_id"}
ERROR_FIELDS = {"code", "description"}
TYPES = {"realtime", "batch", "blackbox"}


def _report(key: str, **extra: str) -> dict[str, str]:
    return {
        "api_key": key,
        "service_code": "环境保护",
        "lat": "28.19412",
        "long": "112.97655",
        "address_string": "A市A2区幸福路8号",
        "description": "工地夜间施工噪音扰民，电话13812345678",
        "first_name": "三",
        "last_name": "张",
        "phone": "13812345678",
        **extra,
    }


def test_services_and_errors_follow_the_spec(app: Any) -> None:
    public = TestClient(app)
    services = public.get("/open311/v2/services.json")
    assert services.status_code == 200
    body = services.json()
    assert {s["service_code"] for s in body} == set(app.state.console.store.routing.categories)
    for s in body:
        assert set(s) == SERVICE_FIELDS and s["type"] in TYPES and s["metadata"] is False
    xml = ET.fromstring(public.get("/open311/v2/services.xml").content)
    assert xml.tag == "services" and {c.tag for c in xml[0]} == SERVICE_FIELDS

    refused = public.post("/open311/v2/requests.json", data=_report("wrong"))
    assert refused.status_code == 403
    [err] = refused.json()
    assert set(err) == ERROR_FIELDS and err["code"] == 403
    refused_xml = public.post("/open311/v2/requests.xml", data=_report(""))
    root = ET.fromstring(refused_xml.content)
    assert refused_xml.status_code == 403 and root.tag == "errors"
    assert {c.tag for c in root[0]} == ERROR_FIELDS
    missing = public.get("/open311/v2/requests/GD20990101-0001.json")
    assert missing.status_code == 404 and set(missing.json()[0]) == ERROR_FIELDS
    assert public.get("/open311/v2/nothing.json").status_code == 404


def test_a_posted_report_becomes_a_ticket_and_its_status_reads_back(
    app: Any, store: TicketStore
) -> None:
    key = apikeys.issue(store.engine, "civic-app")
    public = TestClient(app)
    posted = public.post("/open311/v2/requests.json", data=_report(key, client_request_id="r-1"))
    assert posted.status_code == 201, posted.text
    [answer] = posted.json()
    assert set(answer) == POST_FIELDS
    number = answer["service_request_id"]
    again = public.post("/open311/v2/requests.json", data=_report(key, client_request_id="r-1"))
    assert again.json()[0]["service_request_id"] == number  # idempotent per client id

    # visible in the console, dispatched to the category's department
    dispatcher, _ = login(app, "disp")
    seen = dispatcher.get(f"/api/tickets/{number}")
    assert seen.status_code == 200, seen.text
    ticket = seen.json()
    assert ticket["channel"] == "open311" and ticket["department"] == "市生态环境局"
    assert number in dispatcher.get("/queue/department").text

    [read] = public.get(f"/open311/v2/requests/{number}.json").json()
    assert set(read) == REQUEST_FIELDS
    assert read["status"] == "open" and read["service_code"] == "环境保护"
    assert read["agency_responsible"] == "市生态环境局" and read["address"] == "A2区"
    # nothing the citizen wrote, nor where they stood, is public
    assert read["lat"] is None and read["long"] is None and read["description"] is None
    assert "13812345678" not in posted.text + str(read) and "张三" not in str(read)

    staff = Actor("department", "env1", "市生态环境局")
    store.start(number, staff)
    store.reply(number, "已责令工地停止夜间施工", staff)
    store.rate(number, 5, True, "", Actor("dispatcher", "wang"))  # 回访 by phone
    [closed] = public.get(f"/open311/v2/requests/{number}.json").json()
    assert closed["status"] == "closed" and closed["status_notes"] is None  # the reply is private
    store.publish(number, "已责令工地停止夜间施工", staff)
    [closed] = public.get(f"/open311/v2/requests/{number}.json").json()
    assert closed["status_notes"] == "已责令工地停止夜间施工"
    root = ET.fromstring(public.get(f"/open311/v2/requests/{number}.xml").content)
    assert root.tag == "service_requests" and {c.tag for c in root[0]} == REQUEST_FIELDS
    assert root[0].findtext("status") == "closed"

    listed = public.get("/open311/v2/requests.json?status=closed&service_code=环境保护").json()
    assert [r["service_request_id"] for r in listed] == [number]
    assert public.get("/open311/v2/requests.json?status=open").json() == []
    bad = public.post("/open311/v2/requests.json", data=_report(key, service_code="nope"))
    assert bad.status_code == 404 and bad.json()[0]["code"] == 404
    nowhere = _report(key)
    for field in ("lat", "long", "address_string"):
        nowhere.pop(field)
    assert public.post("/open311/v2/requests.json", data=nowhere).status_code == 400


def _numbers(stmt_where: list[Any], store: TicketStore) -> list[str]:
    """Ticket numbers by plain SQL, newest first (the order GeoReport lists use)."""
    t = tickets.c
    stmt = select(t.number).where(*stmt_where).order_by(t.created_at.desc(), t.id.desc())
    with store.engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def test_request_list_filters_are_the_sql_selection(
    app: Any, store: TicketStore, clock: Clock
) -> None:
    """Date window (with UTC offsets), service codes, status, id lists: against SQL."""
    staff = Actor("supervisor", "seed")
    codes = ("环境保护", "交通运输", "城乡建设")
    for i in range(14):
        clock.now = NOW - timedelta(days=9 * i, hours=i)  # 0 … 120 days back
        view = store.create(
            NewTicket(
                channel="open311",
                kind="complaint",
                summary=f"A市A{i % 9 + 1}区第{i}号问题",
                place=f"A{i % 9 + 1}区幸福路{i}号",
                category=codes[i % 3],
                category_confidence=0.9,
            )
        )
        if i % 3 == 1:
            store.start(view.number, staff)
            store.reply(view.number, "已处理", staff)
            store.rate(view.number, 4, True, "", Actor("dispatcher", "wang"))
    clock.now = NOW
    public = TestClient(app)
    t = tickets.c

    def listed(query: str) -> list[str]:
        answer = public.get(f"/open311/v2/requests.json?{query}")
        assert answer.status_code == 200, answer.text
        return [r["service_request_id"] for r in answer.json()]

    def utc(value: datetime) -> datetime:
        return value.astimezone(UTC).replace(tzinfo=None)

    # default: the last 90 days, newest first
    default = _numbers([t.created_at >= utc(NOW - timedelta(days=90))], store)
    assert listed("") == default and 0 < len(default) < 14

    def span(first: datetime, last: datetime) -> str:
        return f"start_date={quote(first.isoformat())}&end_date={quote(last.isoformat())}"

    # a window given in local time (+08:00) and in UTC (Z) is the same window
    start, end = NOW - timedelta(days=60), NOW - timedelta(days=8)
    window = [t.created_at >= utc(start), t.created_at <= utc(end)]
    local = span(start, end)
    zulu = f"start_date={utc(start).isoformat()}Z&end_date={utc(end).isoformat()}Z"
    assert listed(local) == listed(zulu) == _numbers(window, store) != []

    # the window's ends are inclusive, to the second
    with store.engine.connect() as conn:
        edge = conn.execute(select(t.number, t.created_at).where(*window).limit(1)).one()
    at = edge.created_at.replace(tzinfo=UTC).astimezone(NOW.tzinfo)
    assert edge.number in listed(span(at, at))
    second = timedelta(seconds=1)
    assert edge.number not in listed(span(at - timedelta(days=1), at - second))
    assert edge.number not in listed(span(at + second, at + timedelta(days=1)))

    # service codes and status, together with the window
    closed = [*window, t.category.in_(codes[:2]), t.status.in_(["closed", "merged"])]
    assert listed(f"{local}&service_code={quote(','.join(codes[:2]))}&status=closed") == (
        _numbers(closed, store)
    )
    still_open = [*window, t.status.not_in(["closed", "merged"])]
    assert listed(f"{local}&status=open") == _numbers(still_open, store) != []

    # an id list overrides every other parameter (even a window that excludes them)
    everything = _numbers([], store)
    some = [everything[-1], everything[0], "GD20990101-0001"]
    newest_first = [everything[0], everything[-1]]
    assert listed(f"service_request_id={','.join(some)}&status=closed") == newest_first
    xml = ET.fromstring(public.get("/open311/v2/requests.xml").content)
    assert [r.findtext("service_request_id") for r in xml] == default

    assert public.get("/open311/v2/requests.json?start_date=yesterday").status_code == 400
    assert public.get("/open311/v2/requests.json?status=pending").status_code == 400
