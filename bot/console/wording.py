"""What staff read, in plain Chinese: who did it, which channel, which field, what went wrong.

The store and the API speak in codes (``rest``, ``contact_viewed``, ``request_id``,
"unknown department X / …"); people read names and sentences that say what to do
next. Every text comes from ``templates/messages.json`` (looked up by key here);
this module only decides which key and fills in the blanks. The JSON API keeps
its codes: these helpers feed the pages, CSV cells and the ``message`` of errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.tickets.errors import (
    ConflictError,
    IllegalTransition,
    InvalidInput,
    PermissionDenied,
    TicketError,
    TicketNotFound,
)

Messages = Mapping[str, str]

#: list separator in Chinese prose
SEP = "、"
#: facts a person can use, in the order shown; anything else is under 技术信息
SHOWN_FACTS = (
    "call_id",
    "started_at",
    "agent",
    "intent",
    "intents",
    "service",
    "danger",
    "truncated",
    "lat",
    "long",
    "media_url",
)
#: the longest text of a colleague's change quoted in a conflict
QUOTE_MAX = 120


class _Blank(dict):
    """``str.format_map`` with every missing name left empty (a text never shows ``{x}``)."""

    def __missing__(self, key: str) -> str:
        return ""


def fill(text: str, **params: Any) -> str:
    try:
        return text.format_map(_Blank(params))
    except (ValueError, IndexError):  # a stray brace in an edited message: show it as is
        return text


def label(M: Messages, key: str, default: str | None = None) -> str:
    found = M.get(key)
    if found is not None:
        return found
    return default if default is not None else key.rsplit(".", 1)[-1]


def channel_name(M: Messages, channel: str | None) -> str:
    """微信, 网页, 电话, Telegram … never the channel's code."""
    return M.get(f"channel.{channel}") or M.get("channel.other", "其他渠道")


def status_name(M: Messages, status: str | None) -> str:
    return M.get(f"status.{status}") or M.get("status.other", "其他状态")


def actor_name(
    M: Messages, role: str | None, name: str | None, department: str | None = None
) -> str:
    """市民 / 系统自动 / the staff member by name, role and department.

    A citizen is recorded under a keyed pseudonym (``citizen:…``) and the system
    under a technical name: neither means anything to staff.
    """
    if role == "citizen":
        return M.get("actor.citizen", "市民")
    if role == "system":
        return M.get(f"actor.system.{name}") or M.get("actor.system", "系统自动")
    role_text = M.get(f"role.{role}", "")
    if department:
        return fill(
            M.get("actor.staff_department", "{name}（{role} · {department}）"),
            name=name or "",
            role=role_text,
            department=department,
        )
    return fill(M.get("actor.staff", "{name}（{role}）"), name=name or "", role=role_text)


def event_actor(M: Messages, event: Mapping[str, Any]) -> str:
    return actor_name(
        M, event.get("actor_role"), event.get("actor_name"), event.get("actor_department")
    )


def reason_text(M: Messages, reason: str | None) -> str:
    """A reason staff typed, as typed; one the system wrote (``auto``), in words."""
    if not reason:
        return ""
    return M.get(f"reason.{reason}", reason)


@dataclass(frozen=True)
class Fact:
    key: str
    label: str
    value: str


def _plain(M: Messages, value: Any) -> str:
    if isinstance(value, bool):
        return M.get("fact.yes", "是") if value else M.get("fact.no", "否")
    if isinstance(value, list | tuple):
        return SEP.join(_plain(M, v) for v in value if v not in (None, ""))
    if isinstance(value, dict):
        return "；".join(f"{k}: {_plain(M, v)}" for k, v in value.items())
    return str(value)


def _local(value: Any, tz: ZoneInfo) -> str:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(tz)
    return parsed.strftime("%Y-%m-%d %H:%M")


def _fact_value(M: Messages, key: str, value: Any, tz: ZoneInfo) -> str:
    if key == "started_at":
        return _local(value, tz)
    if key == "intent":
        return label(M, f"intent.{value}", str(value))
    if key == "intents":
        values = value if isinstance(value, list | tuple) else [value]
        return SEP.join(label(M, f"intent.{v}", str(v)) for v in values if v)
    if key == "truncated":
        return M.get("fact.truncated.true", "不完整")
    if key == "danger" and isinstance(value, dict):
        what = label(M, f"danger.{value.get('response')}", M.get("intent.emergency", "紧急情况"))
        if value.get("keyword"):
            return fill(M.get("fact.danger.keyword", "{what}（{keyword}）"), what=what,
                        keyword=value["keyword"])
        return what
    return _plain(M, value)


def facts_view(
    M: Messages, facts: Mapping[str, Any], tz: ZoneInfo
) -> tuple[list[Fact], list[Fact]]:
    """(labelled facts for people, developer facts for the 技术信息 fold).

    Empty values are left out; so is ``truncated`` when the record is complete
    (only an incomplete call is worth a line).
    """
    shown: list[Fact] = []
    for key in SHOWN_FACTS:
        value = facts.get(key)
        if value in (None, "", [], (), {}) or (key == "truncated" and value is not True):
            continue
        if key == "danger" and not isinstance(value, dict):
            continue
        shown.append(Fact(key, label(M, f"fact.{key}"), _fact_value(M, key, value, tz)))
    technical = [
        Fact(key, key, _plain(M, value))
        for key, value in facts.items()
        if key not in {f.key for f in shown} and value not in (None, "", [], (), {})
        and not (key == "truncated" and value is False)
    ]
    return shown, technical


# -- refusals ----------------------------------------------------------------------

#: the English half of :mod:`bot.tickets.messages` → (message code, its parameters)
_STORE_TEXTS: Sequence[tuple[type[TicketError], re.Pattern[str], str]] = (
    (InvalidInput, re.compile(r"^unknown department (?P<department>.+?) /"), "unknown_department"),
    (InvalidInput, re.compile(r"^a reason is required to (?P<action>\w+)"), "reason_required"),
    (InvalidInput, re.compile(r"^score must be"), "bad_score"),
    (InvalidInput, re.compile(r"^cannot merge \S+ into itself"), "merge_self"),
    (InvalidInput, re.compile(r"^cannot merge into (?P<into>\S+): it is (?P<status>\w+)"),
     "merge_target"),
    (InvalidInput, re.compile(r"^text must not be empty"), "empty_text"),
    (InvalidInput, re.compile(r"^the SLA clock of \S+ is not paused"), "not_paused"),
    (InvalidInput, re.compile(r"^the SLA clock of \S+ is already paused"), "already_paused"),
    (IllegalTransition, re.compile(r"^the SLA clock of \S+ is not paused"), "not_paused"),
    (IllegalTransition, re.compile(r"^the SLA clock of \S+ is already paused"), "already_paused"),
    (IllegalTransition, re.compile(r"^cannot merge into (?P<into>\S+): it is (?P<status>\w+)"),
     "merge_target"),
    (IllegalTransition, re.compile(r"^cannot (?P<action>\w+) a ticket that is (?P<status>\w+)"),
     "illegal_action"),
    (PermissionDenied, re.compile(r"may not act on a ticket of (?P<department>.+?) /"),
     "other_department"),
    (PermissionDenied, re.compile(r"^role (?P<role>\w+) may not (?P<action>\w+)"), "role_denied"),
)


def store_text(exc: TicketError) -> tuple[str | None, dict[str, str]]:
    """Which message explains this store refusal, and the values it names."""
    text = str(exc)
    for kind, pattern, code in _STORE_TEXTS:
        if isinstance(exc, kind):
            found = pattern.search(text)
            if found:
                return code, {k: v for k, v in found.groupdict().items() if v is not None}
    if isinstance(exc, TicketNotFound):
        return "not_found", {}
    if isinstance(exc, ConflictError):
        return "conflict", {}
    return None, {}


#: which parameter a refusal's bare ``detail`` is, per code (``Refused(422, "too_long", "text")``)
DETAIL_PARAM = {
    "too_long": "field",
    "bad_param": "param",
    "unknown_department": "department",
    "user_exists": "username",
}
#: fields whose length the console caps, for "最多 N 个字"
LIMITS = {"text": 5000, "reason": 1000, "comment": 1000}


def explain(
    M: Messages,
    code: str,
    detail: str = "",
    params: Mapping[str, str] | None = None,
    departments: Iterable[str] = (),
) -> str:
    """The sentence staff read for refusal ``code``: what happened and what to do next."""
    values: dict[str, Any] = dict(params or {})
    name = DETAIL_PARAM.get(code)
    if name and detail and detail != code and name not in values:
        values[name] = detail
    if "field" in values:
        values.setdefault("limit", LIMITS.get(values["field"], 100))
        values["field"] = label(M, f"field.{values['field']}", M.get("field.text", "内容"))
    if "param" in values:
        values["param"] = label(M, f"field.{values['param']}", values["param"])
    if "action" in values:
        values["action"] = label(M, f"event.{values['action']}", M.get("field.text", ""))
    if "status" in values:
        values["status"] = status_name(M, values["status"])
    if "role" in values:
        values["role"] = label(M, f"role.{values['role']}", "")
    values.setdefault("departments", SEP.join(departments))
    text = M.get(code)
    if text is None:
        return M.get("bad_request", "请求有误，请检查后重试。")
    return fill(text, **values)


def developer_detail(detail: str, code: str, message: str = "") -> str:
    """What goes under 技术信息: the raw detail, unless the sentence already says it all.

    A detail that is only the code, or only the value the sentence names (a
    parameter's or a department's name), adds nothing.
    """
    detail = (detail or "").strip()
    if detail in ("", code) or code in DETAIL_PARAM or (message and detail in message):
        return ""
    return detail


def change_line(M: Messages, event: Mapping[str, Any], tz: ZoneInfo) -> dict[str, str]:
    """One change a stale form missed, as staff read it (who, what, when, and the gist)."""
    action = str(event.get("action") or "")
    what = label(M, f"event.{action}", action)
    payload = event.get("payload") or {}
    gist = ""
    before, after = event.get("from_status"), event.get("to_status")
    if before and after and before != after:
        gist = f"{status_name(M, before)} → {status_name(M, after)}"
    if action in ("dispatch", "transfer") and payload.get("department"):
        gist = SEP.join(x for x in (gist, str(payload["department"])) if x)
    text = payload.get("text") if action in ("reply", "note", "publish", "add_info") else None
    reason = reason_text(M, event.get("reason"))
    quote = str(text or reason or "")
    if len(quote) > QUOTE_MAX:
        quote = quote[: QUOTE_MAX - 1] + "…"
    return {
        "who": event_actor(M, event),
        "what": what,
        "at": _local(event.get("at"), tz) if event.get("at") else "",
        "gist": gist,
        "quote": quote,
    }
