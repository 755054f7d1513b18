"""The routing table is operator data covering the router's seven categories."""

from __future__ import annotations

from bot.tickets import TicketStore
from bot.tickets.routing import RoutingTable
from bot.tickets.sla import SlaPolicy

CATEGORIES = [
    "城乡建设",
    "劳动和社会保障",
    "教育文体",
    "商贸旅游",
    "环境保护",
    "卫生计生",
    "交通运输",
]


def test_every_category_maps_to_a_department_and_a_known_sla_class() -> None:
    table = RoutingTable.load()
    policy = SlaPolicy.load()
    assert sorted(table.categories) == sorted(CATEGORIES)
    for route in table.categories.values():
        assert route.department.startswith("市")
        assert route.sla_class is None or route.sla_class in policy.classes
    assert table.manual_queue
    assert len(set(table.departments)) == len(table.departments) >= 7


def test_threshold_and_overrides_decide_auto_dispatch() -> None:
    table = RoutingTable.load()
    assert table.route("教育文体", 0.9, "学校乱收费", 0.6).department == "市教育局"
    assert table.route("教育文体", 0.5, "学校乱收费", 0.6) is None
    assert table.route(None, None, "公司拖欠工资三个月", 0.6).department == "市人力资源和社会保障局"
    assert table.category_of("市交通运输局") == "交通运输"


def test_an_emergency_never_waits_for_manual_dispatch(store: TicketStore) -> None:
    """A fire the router is unsure about still goes somewhere at once, on the 24 h clock."""
    from bot.tickets import NewTicket

    fire = store.create(NewTicket(
        channel="hotline", kind="emergency", summary="小区地下车库电动车起火，烟很大",
        category="城乡建设", category_confidence=0.31,
    ))
    assert fire.status.value == "dispatched" and fire.department == "市应急管理局"
    assert fire.sla_class == "emergency"
    assert (fire.deadline - fire.created_at).total_seconds() <= 24 * 3600
    sure = store.create(NewTicket(
        channel="wechat", kind="emergency", summary="学校食堂很多学生中毒", sender_id="wechat:o1",
        category="教育文体", category_confidence=0.93,
    ))
    assert sure.department == "市教育局" and sure.sla_class == "emergency"
    complaint = store.create(NewTicket(
        channel="hotline", kind="complaint", summary="小区车库电动车乱停",
        category="城乡建设", category_confidence=0.31,
    ))
    assert complaint.status.value == "received" and complaint.department is None
