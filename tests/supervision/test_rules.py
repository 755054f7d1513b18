"""Pure rules: districts, the surge statistic, open-data suppression, hot spots on real messages."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bot.settings import ROOT
from bot.supervision import opendata, surge
from bot.supervision.districts import district_table
from bot.supervision.hotspots import Doc, docs_from_csv, find_hotspots
from bot.supervision.stats import Fact

UTC = timezone.utc
CSV = ROOT / "data" / "hotspots" / "unlabeled.csv"


def test_districts_from_places_and_anonymised_names() -> None:
    table = district_table()
    assert table.of("A市A2区幸福路1号") == "A2区"
    assert table.of(None, "反映K6县某镇道路问题") == "K6县"
    assert table.of("幸福小区", "A7县春华镇金鼎村") == "A7县"  # place names none: the text does
    assert table.of("幸福小区") == table.unknown


def _fact(day: date, category: str = "环境保护", district: str = "A2区", n: int = 0) -> Fact:
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=3)
    return Fact(
        f"GD{n}",
        day,
        at,
        "complaint",
        "received",
        category,
        "d",
        "wechat",
        district,
        at + timedelta(days=3),
        False,
        None,
        None,
        None,
        None,
        None,
    )


def test_surge_rule_ewma_poisson_min_count() -> None:
    today = date(2026, 11, 27)
    # a steady 2 a day for 28 days: 5 today is ordinary, 12 is a surge
    history = [_fact(today - timedelta(days=k)) for k in range(1, 29) for _ in range(2)]
    assert surge.ewma_baseline([2] * 28) == 2.0
    assert surge.detect(history + [_fact(today)] * 5, today) == []
    found = surge.detect(history + [_fact(today)] * 12, today)
    assert len(found) == 1 and found[0].count == 12
    assert found[0].p_value < surge.ALPHA and abs(found[0].baseline - 2.0) < 1e-9
    # a quiet cell: 4 is below the minimum count however unlikely; 5 alarms
    assert surge.detect([_fact(today)] * 4, today) == []
    assert len(surge.detect([_fact(today)] * 5, today)) == 1


def _cell_facts() -> list[Fact]:
    day = date(2026, 11, 20)
    facts = [_fact(day, "环境保护", "A1区", i) for i in range(20)]
    facts += [_fact(day, "城乡建设", "A2区", 100 + i) for i in range(2)]  # a small cell
    facts += [_fact(day, "交通运输", "A3区", 200 + i) for i in range(7)]
    return facts


def test_open_data_suppresses_small_cells_and_their_complement() -> None:
    day = date(2026, 11, 20)
    cells = opendata.aggregate(
        _cell_facts(),
        since=day,
        until=day,
        categories=frozenset(["环境保护", "城乡建设", "交通运输"]),
    )
    by = {(c.dimension, c.value): c for c in cells}
    assert not by[("all", "all")].suppressed and by[("all", "all")].tickets == 29
    assert by[("category", "城乡建设")].suppressed  # 2 < 5
    assert by[("category", "交通运输")].suppressed  # complementary: smallest other cell
    assert not by[("category", "环境保护")].suppressed
    csv_text = opendata.to_csv(cells)
    assert ",category,环境保护,20," in csv_text
    assert "城乡建设" not in csv_text and "交通运输" not in csv_text  # dropped, not "<5"
    for dim in opendata.DIMENSIONS:  # hidden cells of a group hold >= k tickets together
        hidden = [c.tickets for c in cells if c.dimension == dim and c.suppressed]
        assert not hidden or sum(hidden) >= opendata.K


def test_open_data_small_total_hides_the_whole_period() -> None:
    day = date(2026, 11, 20)
    cells = opendata.aggregate(
        [_fact(day, n=i) for i in range(3)],
        since=day,
        until=day,
        categories=frozenset(["环境保护"]),
    )
    assert cells and all(c.suppressed for c in cells)
    assert opendata.rows(cells) == []


def test_hotspots_on_the_real_messages() -> None:
    docs = docs_from_csv(CSV)
    assert len(docs) == 4270
    spots = find_hotspots(docs, top=20, half_life_days=365)
    assert spots and spots == sorted(spots, key=lambda s: -s.heat)
    # the board's best-known hot spot: parking spaces sold bundled at 伊景园滨河苑
    top = " ".join(s.label + " ".join(s.examples) for s in spots[:5])
    assert "滨河" in top or "伊景园" in top
    for s in spots:
        assert s.count >= 2 and len(s.ids) == s.count and s.keywords
        assert not any(ch.isdigit() for ch in "".join(s.keywords))


def test_hotspots_group_same_place_similar_text_only() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    same = [Doc(f"a{i}", f"A2区幸福小区门口烧烤油烟扰民严重{i}", "A2区", now, 1) for i in range(4)]
    elsewhere = [
        Doc(f"b{i}", f"A3区幸福小区门口烧烤油烟扰民严重{i}", "A3区", now) for i in range(2)
    ]
    other = [Doc("c", "A2区某学校收费不合理", "A2区", now)]
    spots = find_hotspots(same + elsewhere + other, now=now)
    assert [sorted(s.ids) for s in spots] == [[f"a{i}" for i in range(4)], ["b0", "b1"]]
    assert spots[0].heat > spots[1].heat and "油烟" in spots[0].label


def test_cli_hotspots_on_csv(tmp_path: Path) -> None:
    import subprocess
    import sys

    cli = Path(sys.executable).with_name("citizenbot")
    done = subprocess.run(
        [str(cli), "hotspots", "--csv", str(CSV), "--top", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    import json

    assert len(json.loads(done.stdout)) == 3
