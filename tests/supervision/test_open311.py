"""Open311 GeoReport v2: field lists from the spec, keys, a POSTed report's life."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from starlette.testclient import TestClient

from bot.supervision import apikeys
from bot.tickets import Actor, TicketStore
from tests.supervision.helpers import login

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
    assert read["lat"] == 28.194 and read["long"] == 112.977
    assert "13812345678" not in posted.text + str(read) and "张三" not in str(read)

    staff = Actor("department", "env1", "市生态环境局")
    store.start(number, staff)
    store.reply(number, "已责令工地停止夜间施工", staff)
    store.rate(number, 5, True, "", Actor.bot())
    [closed] = public.get(f"/open311/v2/requests/{number}.json").json()
    assert closed["status"] == "closed" and closed["status_notes"] == "已责令工地停止夜间施工"
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
