"""Builders shared by the ticket tests."""

from __future__ import annotations

from typing import Any

from bot.tickets import Actor, NewTicket, Role

PHONE = "13812345678"
ID_NUMBER = "11010519491231002X"
NAME = "张三丰"

DISPATCHER = Actor(Role.DISPATCHER, "wang")
SUPERVISOR = Actor(Role.SUPERVISOR, "zhao")
ADMIN = Actor(Role.ADMIN, "root")
ENV_STAFF = Actor(Role.DEPARTMENT, "li", "市生态环境局")
HOUSING_STAFF = Actor(Role.DEPARTMENT, "chen", "市住房和城乡建设局")
CITIZEN = Actor.citizen("user-1")  # the sender of complaint()


def complaint(**overrides: Any) -> NewTicket:
    values: dict[str, Any] = {
        "channel": "rest",
        "kind": "complaint",
        "summary": f"幸福小区烧烤摊油烟扰民，我的电话{PHONE}",
        "description": f"每天晚上十点以后还在营业，油烟很大。身份证{ID_NUMBER}",
        "sender_id": "user-1",
        "source": "user-1",
        "place": "幸福小区",
        "phone": PHONE,
        "id_number": ID_NUMBER,
        "name": NAME,
        "category": "环境保护",
        "category_confidence": 0.92,
        "transcript": [
            {"speaker": "citizen", "text": f"我要投诉，电话{PHONE}"},
            {"speaker": "bot", "text": "请描述问题"},
        ],
    }
    values.update(overrides)
    return NewTicket(**values)
