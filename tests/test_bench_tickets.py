"""The ticket benchmark's floor: same rows, same table shape, nothing left behind.

Timings are never asserted (the machine is shared); these only guard that the
baseline the ratio is taken against writes what it claims and cleans up.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Table, create_engine, inspect, select, text

from bench.tickets.run import FLOOR_PREFIX, Floor, floor_table, measure
from bot.tickets.schema import tickets

PG_URL = os.environ.get("TICKETS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _index_shapes(table: Table) -> set[tuple[str, ...]]:
    return {tuple(c.name for c in index.columns) for index in table.indexes}


def test_floor_table_has_the_ticket_tables_columns_and_indexes() -> None:
    floor = floor_table("bench_floor_shape")
    assert [c.name for c in floor.columns] == [c.name for c in tickets.columns]
    assert [str(c.type) for c in floor.columns] == [str(c.type) for c in tickets.columns]
    assert {c.name for c in floor.columns if c.unique} == {"number", "idempotency_key"}
    assert _index_shapes(floor) == _index_shapes(tickets)
    # no name shared with the store's tables: on PostgreSQL they live in one schema
    names = {i.name for i in floor.indexes} | {c.name for c in floor.constraints if c.name}
    assert names and not any("tickets" in str(name) for name in names)


def _exercise(floor: Floor, n: int) -> None:
    numbers = [floor.create(i) for i in range(n)]
    for number in numbers:
        floor.update(number)
    assert floor.count() == n
    with floor.engine.connect() as conn:
        versions = conn.execute(select(floor.table.c.version)).scalars().all()
    assert versions == [1] * n
    listed = floor.list(limit=n - 1)
    assert [row.number for row in listed] == numbers[::-1][: n - 1]


def test_floor_writes_one_row_per_ticket_and_drops_its_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'floor.db'}"
    floor = Floor(url)
    name = floor.table.name
    assert name.startswith(FLOOR_PREFIX)
    _exercise(floor, 5)
    floor.drop()
    engine = create_engine(url, future=True)
    try:
        assert name not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_measure_runs_on_a_tiny_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figures = measure(
        "sqlite",
        f"sqlite:///{tmp_path / 'tickets.db'}",
        f"sqlite:///{tmp_path / 'floor.db'}",
        n=4,
        rounds=2,
    )
    assert set(figures) == {"store", "floor"}
    out = capsys.readouterr().out
    assert "ratio store/floor" in out and "AUDIT PROBLEMS" not in out
    engine = create_engine(f"sqlite:///{tmp_path / 'floor.db'}", future=True)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_floor_on_postgres_drops_its_table() -> None:
    admin = create_engine(PG_URL, future=True, pool_pre_ping=True)
    schema = f"bench_floor_test_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        floor = Floor(url)
        _exercise(floor, 3)
        floor.drop()
        assert inspect(admin).get_table_names(schema=schema) == []
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
