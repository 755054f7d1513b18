"""转人工 live: hand the conversation to a member of staff, forward both ways, hand back.

* :func:`start_handoff` (``action_handoff``, two fallbacks in a row): in staffed
  hours (``HANDOFF_HOURS``) a live session opens in the console's 在线会话 queue
  with the conversation so far, and the bot promises the wait the queue enforces
  (``HANDOFF_WAIT_MINUTES``). Otherwise it says honestly that no one is there
  and files a call-back ticket whose summary is what the citizen asked for (it
  asks first when the conversation has no request yet).
* :class:`ActionLiveMessage`: while the slot ``live_handoff_session`` is set, a
  rule sends every citizen message here instead of the bot's answer. Danger is
  still recognised on every message (the numbers to call come first); the rest
  is kept for staff, silently once someone took the session.
* :class:`ActionLiveUpdate`: the console tells the citizen, on their own channel,
  through Rasa's ``trigger_intent`` (as :mod:`bot.console.notify` does): taken,
  a staff message, handed back or closed, or the wait is over (then the session
  becomes a call-back ticket here: only actions write tickets).

The database is the truth, the slot only routes messages: an action that finds
the slot and the session disagree (a notification that never arrived) puts the
conversation right, and a message meant for the bot is answered by the bot.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    EventType,
    FollowupAction,
    SlotSet,
    UserUtteranceReverted,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    channel_of,
    format_deadline,
    latest_entity,
    local_now,
    store,
    transcript,
)
from bot.settings import get_settings
from bot.tickets import NewTicket, TicketError, TicketView
from bot.tickets.live import TAKEN, WAITING, LiveSession, LiveStore

log = logging.getLogger(__name__)

#: the slot that routes the citizen's messages to staff: a session id, or ASK
SLOT = "live_handoff_session"
#: outside staffed hours with no request known yet: the next message is the request
ASK = "ask"
#: intents that carry no request ("转人工" itself, greetings, thanks …)
NOT_A_REQUEST = frozenset({
    "greet", "goodbye", "thank", "affirm", "deny", "cancel", "request_human", "chitchat",
    "insult", "rate", "solved", "not_solved",
})
#: citizen says this while waiting: stop waiting
CANCEL_INTENTS = frozenset({"cancel", "goodbye"})
#: lines of the conversation copied into the session (the console shows them)
HISTORY_LINES = 30
SUMMARY_CHARS = 120


@lru_cache(maxsize=1)
def live() -> LiveStore:
    return LiveStore(store())


def staffed(now: datetime) -> bool:
    """Is someone at the 在线会话 queue now? ``HANDOFF_HOURS`` decides."""
    from actions.support import in_working_hours

    mode = get_settings().handoff_hours.strip().lower()
    if mode == "always":
        return True
    if mode == "never":
        return False
    return in_working_hours(now)


def hours_text() -> str:
    from actions.support import working_hours

    start, end = working_hours()
    return f"{start:%H:%M}-{end:%H:%M}"


def when(value: datetime | None) -> str:
    """A deadline as citizens read it, with the hour: 12月4日17:30 (``data/formats.yml``)."""
    return format_deadline(value, with_time=True)


def _intent(event: dict[str, Any]) -> str:
    return str(((event.get("parse_data") or {}).get("intent") or {}).get("name") or "")


def citizen_request(tracker: Tracker) -> str:
    """What the citizen asked for in this conversation: the latest message that is a request.

    Not the first message of the chat (often 你好), nor "转人工" itself: the latest
    citizen message of the current session whose intent carries a request (a
    question, a complaint, a message the bot did not understand).
    """
    for event in reversed(list(tracker.events)):
        kind = event.get("event")
        if kind == "session_started":
            break
        if kind != "user":
            continue
        text = str(event.get("text") or "").strip()
        if not text or text.startswith("/"):
            continue
        intent = _intent(event)
        if intent.startswith("EXTERNAL_") or intent in NOT_A_REQUEST:
            continue
        return text
    return ""


def attachment_lines(tracker: Tracker) -> str:
    """Pictures and files the channel passed along (WeChat images), as lines for staff."""
    found = (tracker.latest_message.get("metadata") or {}).get("attachments") or []
    lines = []
    for item in found:
        if isinstance(item, dict) and (item.get("url") or item.get("media_id")):
            kind = {"image": "图片"}.get(str(item.get("type")), "附件")
            lines.append(f"\n[{kind}] {item.get('url') or item.get('media_id')}")
    return "".join(lines)


def _session_of(tracker: Tracker) -> LiveSession | None:
    try:
        return live().current(tracker.sender_id)
    except TicketError:
        log.exception("live session lookup failed")
        return None


def _last_ticket_department(tracker: Tracker) -> tuple[str | None, str | None]:
    """The conversation's ticket and its department: a routed session shows there too."""
    number = tracker.get_slot("last_ticket")
    if not number:
        return None, None
    try:
        view = store().get(str(number))
    except TicketError:
        return None, None
    if view.sender_id != tracker.sender_id:
        return None, None
    return view.number, view.department


def file_callback(
    tracker: Tracker, request: str, *, key: str, session: LiveSession | None = None
) -> TicketView:
    """A call-back ticket whose summary is the request; raises TicketError."""
    if session is not None:
        session = live().get(session.id)
        lines = [
            {"speaker": m.speaker if m.speaker in ("citizen", "bot") else "bot",
             "text": m.text if m.speaker != "staff" else f"工作人员：{m.text}",
             "time": m.at.isoformat()}
            for m in session.messages if m.speaker != "system"
        ]
        during = [m.text for m in session.messages
                  if m.speaker == "citizen" and m.flag != "before"]
        request = request or (during[0] if during else "")
    else:
        lines = transcript(tracker)[-HISTORY_LINES:]
        during = []
    description = "\n".join([request, *[t for t in during if t != request]]).strip()
    new = NewTicket(
        channel=session.channel if session else channel_of(tracker),
        kind="callback",
        summary=(request or "市民要求人工服务")[:SUMMARY_CHARS],
        description=description or request,
        sender_id=tracker.sender_id,
        source=tracker.sender_id,
        idempotency_key=key,
        transcript=lines,
        facts={"live_session": session.id} if session else {},
    )
    return store().create(new)


def _logged(dispatcher: CollectingDispatcher, ticket: TicketView) -> None:
    dispatcher.utter_message(
        response="utter_live_callback_logged", number=ticket.number, deadline=when(ticket.deadline)
    )


def start_handoff(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
) -> list[EventType]:
    """转人工: a live session in staffed hours, an honest call-back ticket otherwise."""
    settings = get_settings()
    current = _session_of(tracker)
    if current is not None:
        dispatcher.utter_message(
            response="utter_live_already_waiting" if current.status == WAITING
            else "utter_live_already_taken",
            wait=settings.handoff_wait_minutes,
        )
        return [SlotSet(SLOT, str(current.id)), SlotSet("fallback_count", 0)]
    request = citizen_request(tracker)
    if staffed(local_now()):
        number, department = _last_ticket_department(tracker)
        try:
            session = live().open(
                tracker.sender_id,
                channel_of(tracker),
                request,
                wait_minutes=settings.handoff_wait_minutes,
                history=transcript(tracker)[-HISTORY_LINES:],
                department=department,
                ticket_number=number,
            )
        except TicketError:
            log.exception("live session not opened")
            dispatcher.utter_message(response="utter_service_error")
            return []
        dispatcher.utter_message(response="utter_live_waiting", wait=settings.handoff_wait_minutes)
        return [SlotSet(SLOT, str(session.id)), SlotSet("fallback_count", 0)]
    mode = settings.handoff_hours.strip().lower()
    reason = "utter_live_unstaffed" if mode == "never" else "utter_live_off_hours"
    dispatcher.utter_message(response=reason, hours=hours_text())
    if not request:
        dispatcher.utter_message(response="utter_live_ask_request")
        return [SlotSet(SLOT, ASK), SlotSet("fallback_count", 0)]
    message_id = tracker.latest_message.get("message_id") or ""
    try:
        ticket = file_callback(
            tracker, request, key=f"{channel_of(tracker)}:{tracker.sender_id}:{message_id}:handoff"
        )
    except TicketError:
        dispatcher.utter_message(response="utter_service_error")
        return []
    _logged(dispatcher, ticket)
    return [SlotSet(SLOT, None), SlotSet("fallback_count", 0),
            SlotSet("last_ticket", ticket.number)]


def _answer_as_bot(tracker: Tracker) -> list[EventType]:
    """The slot outlived the session: clear it and let the bot answer this message.

    The message is taken back and given again after an ``action_listen``, so the
    policies predict for it as for any message (what Rasa's own two-stage
    fallback does).
    """
    latest = dict(tracker.latest_message or {})
    user = {
        "event": "user",
        "text": latest.get("text"),
        "parse_data": latest,
        "input_channel": tracker.get_latest_input_channel(),
        "message_id": latest.get("message_id"),
        "metadata": latest.get("metadata") or {},
    }
    return [UserUtteranceReverted(), SlotSet(SLOT, None), ActionExecuted("action_listen"), user]


def expire(
    dispatcher: CollectingDispatcher, tracker: Tracker, session: LiveSession
) -> list[EventType]:
    """Nobody took it in time: say so, and file the call-back ticket (once)."""
    settings = get_settings()
    try:
        ended = live().end(session.id, "expired", "system")
    except TicketError:
        return []  # taken (or ended) at the last moment: nothing to say here
    dispatcher.utter_message(response="utter_live_expired", wait=settings.handoff_wait_minutes)
    try:
        ticket = file_callback(tracker, ended.request, key=f"live:{session.id}:callback",
                               session=ended)
        live().end_callback(session.id, ticket.number)
    except TicketError:
        log.exception("call-back ticket of live session %s not filed", session.id)
        dispatcher.utter_message(response="utter_service_error")
        return [SlotSet(SLOT, None)]
    _logged(dispatcher, ticket)
    return [SlotSet(SLOT, None), SlotSet("last_ticket", ticket.number)]


class ActionLiveMessage(Action):
    """A citizen message during a handoff: kept for staff; danger still comes first."""

    def name(self) -> str:
        return "action_live_message"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = live_message(dispatcher, tracker, domain)
        if any(e.get("event") == "rewind" for e in events):
            return events  # the message goes to the bot's policies again
        # The rule that brought us here no longer holds when the slot changed (the
        # session ended): nothing else is to be predicted for this message.
        return [*events, FollowupAction("action_listen")]


def live_message(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
) -> list[EventType]:
    from actions.support import danger_of, handle_emergency

    text = str(tracker.latest_message.get("text") or "").strip()
    intent = str((tracker.latest_message.get("intent") or {}).get("name") or "")
    events: list[EventType] = []
    danger = danger_of(tracker)
    kept = text + attachment_lines(tracker)  # what staff see: a picture's link too
    if danger is not None or intent == "emergency":
        # the numbers to call first, whoever is (or is not) at the other end
        events += handle_emergency(dispatcher, tracker, danger)
    slot = tracker.get_slot(SLOT)
    session = _session_of(tracker)
    if slot == ASK and session is None:
        if intent in CANCEL_INTENTS:
            dispatcher.utter_message(response="utter_live_cancelled")
            return [*events, SlotSet(SLOT, None)]
        if danger is not None:
            return events
        if not text or text.startswith("/") or intent in NOT_A_REQUEST:
            dispatcher.utter_message(response="utter_live_ask_request")
            return events
        message_id = tracker.latest_message.get("message_id") or ""
        try:
            ticket = file_callback(
                tracker, text,
                key=f"{channel_of(tracker)}:{tracker.sender_id}:{message_id}:handoff",
            )
        except TicketError:
            dispatcher.utter_message(response="utter_service_error")
            return events
        _logged(dispatcher, ticket)
        return [*events, SlotSet(SLOT, None), SlotSet("last_ticket", ticket.number)]
    if session is None:
        if events:
            return [*events, SlotSet(SLOT, None)]
        return _answer_as_bot(tracker)
    flag = "emergency" if danger is not None or intent == "emergency" else None
    if session.overdue(datetime.now(session.expires_at.tzinfo)):
        with contextlib.suppress(TicketError):
            live().record(session.id, "citizen", text or "（空消息）", flag=flag)
        return [*events, *expire(dispatcher, tracker, session)]
    if session.status == WAITING and intent in CANCEL_INTENTS and not flag:
        try:
            live().record(session.id, "citizen", text, flag=flag)
            live().end(session.id, "cancelled", "citizen")
        except TicketError:
            pass
        else:
            dispatcher.utter_message(response="utter_live_cancelled")
            return [*events, SlotSet(SLOT, None)]
    try:
        first = not any(
            m.speaker == "citizen" and m.flag != "before" for m in live().get(session.id).messages
        )
        live().record(session.id, "citizen", kept or "（空消息）", flag=flag)
        if flag:
            numbers = [e.get("value") for e in events if e.get("name") == "last_ticket"]
            note = "已提示市民拨打紧急电话" + (f"，登记工单 {numbers[0]}" if numbers else "")
            live().record(session.id, "system", note)
        if session.status == WAITING and not session.request and text and \
                intent not in NOT_A_REQUEST and not text.startswith("/"):
            live().set_request(session.id, text)
    except TicketError:
        log.exception("live message not kept")
        dispatcher.utter_message(response="utter_service_error")
        return events
    if session.status == WAITING and first and not flag:
        dispatcher.utter_message(response="utter_live_noted")
    return [*events, SlotSet(SLOT, str(session.id))]


class ActionLiveUpdate(Action):
    """What the console did, told to the citizen on their own channel."""

    def name(self) -> str:
        return "action_live_update"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return [*self.update(dispatcher, tracker), FollowupAction("action_listen")]

    def update(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        intent = str((tracker.latest_message.get("intent") or {}).get("name") or "")
        raw = latest_entity(tracker, "live_id")
        if not raw or not str(raw).isdigit():
            return []
        try:
            session = live().get(int(raw))
        except TicketError:
            return []
        if session.sender_id != tracker.sender_id:
            return []  # only the citizen's own conversation hears about their session
        if intent == "EXTERNAL_live_timeout":
            return expire(dispatcher, tracker, session) if session.status == WAITING else []
        if intent == "EXTERNAL_live_taken":
            if session.status != TAKEN:
                return []
            dispatcher.utter_message(response="utter_live_taken")
            return [SlotSet(SLOT, str(session.id))]
        if intent == "EXTERNAL_live_message":
            raw_message = latest_entity(tracker, "live_message_id")
            if not raw_message or not str(raw_message).isdigit():
                return []
            try:
                message = live().message(session.id, int(raw_message))
            except TicketError:
                return []
            if message.speaker != "staff":
                return []
            dispatcher.utter_message(response="utter_live_staff", message=message.text)
            return [SlotSet(SLOT, str(session.id))] if session.status == TAKEN else []
        if intent == "EXTERNAL_live_ended":
            if session.is_open:
                return []
            if tracker.get_slot(SLOT) not in (None, str(session.id)):
                return []  # a newer session is running: this one's end changes nothing
            reason = session.end_reason or "closed"
            if reason in ("handed_back", "closed", "lapsed"):
                dispatcher.utter_message(response=f"utter_live_{reason}")
            return [SlotSet(SLOT, None)]
        return []
