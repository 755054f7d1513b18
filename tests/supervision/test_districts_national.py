"""Issue 18, item 4: real places resolve to their 区县, wherever in China they are.

The national list is the one the ``jionlp`` package ships (read offline); the
operator's ``data/districts.yml`` overrides and extends it and names the home city
that settles ambiguous names (朝阳区 is in Beijing and in Changchun).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot.supervision import opendata
from bot.supervision.districts import DistrictTable, district_table
from bot.supervision.districts_national import Home, national_divisions
from bot.supervision.stats import load_facts
from bot.tickets import NewTicket, TicketStore
from tests.supervision.conftest import NOW, Clock
from tests.supervision.test_rules import _fact


def _table(tmp_path: Path, body: str) -> DistrictTable:
    path = tmp_path / "districts.yml"
    path.write_text(body, encoding="utf-8")
    return DistrictTable.load(path)


BEIJING = "city: 北京市\nunknown: 未知区县\n"


def test_the_national_list_is_complete_and_offline() -> None:
    national = national_divisions()
    assert len(national.provinces) == 34
    assert len(national.counties) > 2800 and len(national.towns) > 30_000
    beijing, changchun = sorted(national.counties["朝阳区"], key=lambda d: d.code)
    assert (beijing.code, beijing.province) == ("110105", "北京市")
    assert (changchun.code, changchun.city) == ("220104", "长春市")


@pytest.mark.parametrize(
    ("text", "home", "label"),
    [
        # the complaint: counted in Beijing's 朝阳区 when the centre is Beijing's
        ("朝阳区建国路88号", ("", "北京市"), "朝阳区"),
        ("朝阳区建国路88号", ("吉林省", ""), "长春市朝阳区"),
        # the text itself says which 朝阳区, whatever the home
        ("长春市朝阳区人民大街", ("", "北京市"), "长春市朝阳区"),
        ("长春朝阳区人民大街", ("", "北京市"), "长春市朝阳区"),
        ("吉林省朝阳区", ("", "北京市"), "长春市朝阳区"),
        ("北京市朝阳区建国路", ("", ""), "北京市朝阳区"),
        # a district elsewhere is counted with its city
        ("广州市越秀区北京路", ("", "北京市"), "广州市越秀区"),
        ("海淀区中关村大街", ("", "北京市"), "海淀区"),
        ("海淀区中关村大街", ("", ""), "北京市海淀区"),
        # a county-level city, its 镇; a 街道/镇 alone places the text when it is unique
        ("昆山市玉山镇", ("", ""), "苏州市昆山市"),
        ("张江镇科苑路", ("", ""), "上海市浦东新区"),
        # a county-level city directly under its province keeps the province
        ("仙桃市沙嘴街道", ("", ""), "湖北省仙桃市"),
        # ambiguous with nothing to settle it: the name, not a guess
        ("朝阳区建国路88号", ("", ""), "朝阳区"),
        # two-character names are ordinary words unless something settles them
        ("市和县两级政府都不管", ("", ""), None),
        ("城区新华路路灯不亮", ("", ""), None),
        ("马鞍山市和县历阳镇", ("", ""), "马鞍山市和县"),
        ("阳泉市城区", ("", ""), "阳泉市城区"),
        ("幸福小区3栋", ("", "北京市"), None),
    ],
)
def test_places_resolve_anywhere_in_china(text: str, home: tuple[str, str], label: str) -> None:
    national = national_divisions()
    settled = national.home(*home)
    place = national.resolve(text, settled)
    assert (national.label(place, settled) if place else None) == label


def test_home_is_read_by_full_or_short_name_and_a_fictional_one_is_ignored() -> None:
    national = national_divisions()
    assert national.home("", "北京") == Home("北京市", "北京市")
    assert national.home("吉林", "长春") == Home("吉林省", "长春市")
    assert national.home("西地省", "A市") == Home("", "")


def test_the_operator_list_overrides_and_extends(tmp_path: Path) -> None:
    table = _table(
        tmp_path,
        BEIJING
        + "districts:\n"
        + "  - {name: 朝阳区, aliases: [望京, 三里屯]}\n"
        + "  - {name: 亦庄开发区, aliases: [亦庄]}\n",
    )
    assert table.home == Home("北京市", "北京市")
    assert table.of("望京SOHO楼下") == "朝阳区"  # a landmark the national list lacks
    assert table.of("亦庄文化园") == "亦庄开发区"  # a name of the operator's own
    assert table.of("朝阳区建国路") == "朝阳区"
    assert table.of("长春市朝阳区") == "长春市朝阳区"
    assert table.of("幸福小区", "反映海淀区学院路噪音") == "海淀区"  # place first, then text
    assert table.of("幸福小区") == "未知区县"
    for label in ("朝阳区", "亦庄开发区", "长春市朝阳区", "海淀区", "未知区县"):
        assert table.is_label(label)
    assert not table.is_label("幸福小区3栋") and not table.is_label("13812345678")
    assert set(table.words_of("长春市朝阳区")) >= {"朝阳区", "朝阳", "长春市", "长春"}
    assert "望京" in table.words_of("朝阳区")


def test_the_operator_may_rename_a_home_district(tmp_path: Path) -> None:
    table = _table(tmp_path, BEIJING + "districts:\n  - {name: 北京朝阳, aliases: [朝阳区]}\n")
    assert table.of("朝阳区建国路") == "北京朝阳"
    assert table.of("北京市朝阳区建国路") == "北京朝阳"
    assert table.of("长春市朝阳区") == "长春市朝阳区"  # not the operator's 朝阳区
    assert table.is_label("北京朝阳")


def test_the_national_list_can_be_turned_off(tmp_path: Path) -> None:
    table = _table(tmp_path, BEIJING + "national: false\n")
    assert table.national is None and table.of("朝阳区建国路") == "未知区县"


def test_the_demo_table_keeps_its_anonymised_names_and_adds_real_ones() -> None:
    table = district_table()
    assert table.of("A市A2区幸福路1号") == "A2区"
    assert table.of(None, "反映K6县某镇道路问题") == "K6县"
    assert table.of("北京市朝阳区建国路") == "北京市朝阳区"
    assert table.of("朝阳区建国路") == "朝阳区"


def test_open_data_publishes_only_names_of_the_lists() -> None:
    day = date(2026, 11, 20)
    facts = [_fact(day, district="北京市朝阳区", n=i) for i in range(6)]
    facts += [_fact(day, district="我家楼下13812345678", n=10 + i) for i in range(6)]
    cells = opendata.aggregate(facts, since=day, until=day, categories=frozenset(["环境保护"]))
    values = {c.value for c in cells if c.dimension == "district" and not c.suppressed}
    assert values == {"北京市朝阳区", opendata.OTHER}


def test_dashboard_and_open_data_count_real_districts(
    app: Any, store: TicketStore, clock: Clock
) -> None:
    day = NOW.date() - timedelta(days=2)
    places = ["北京市朝阳区建国路88号"] * 6 + ["广州市越秀区北京路"] * 5 + ["幸福小区"] * 5
    for i, place in enumerate(places):
        clock.now = NOW.replace(year=day.year, month=day.month, day=day.day, hour=9, minute=i)
        store.create(NewTicket(channel="wechat", kind="complaint", summary="工地夜间施工噪音扰民",
                               place=place, category="环境保护", category_confidence=0.9,
                               sender_id=f"wechat:o-{i}"))
    clock.now = NOW
    facts = load_facts(store.engine, store.tz)
    counted: dict[str, int] = {}
    for f in facts:
        counted[f.district] = counted.get(f.district, 0) + 1
    assert counted == {"北京市朝阳区": 6, "广州市越秀区": 5, "未知区县": 5}
    answer = TestClient(app).get(f"/open-data/data.csv?since={day}&until={day}&period=all")
    assert answer.status_code == 200, answer.text
    assert ",district,北京市朝阳区,6," in answer.text and ",district,广州市越秀区,5," in answer.text
