"""When the bot cannot settle it alone: fallbacks, handoff to a person, emergencies."""

from __future__ import annotations

from datetime import datetime, time

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import channel_of, message_key, store, transcript
from bot.settings import get_settings
from bot.tickets import NewTicket, TicketError
from nlu.emergency import Danger, recognise
from nlu.text import normalize

#: consecutive fallbacks after which a person takes over
FALLBACKS_BEFORE_HANDOFF = 2


def working_hours() -> tuple[time, time]:
    start, end = get_settings().working_hours.split("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def in_working_hours(now: datetime) -> bool:
    from bot.tickets.calendar import is_working_day

    start, end = working_hours()
    return is_working_day(now.date()) and start <= now.time() < end


class ActionHandoff(Action):
    """转人工: a live session with staff in staffed hours, an honest call-back otherwise
    (:func:`actions.live.start_handoff`)."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        from actions.live import start_handoff

        return start_handoff(dispatcher, tracker, domain)


def blank(text: str | None) -> bool:
    """Nothing typed: spaces, invisible characters, or an empty send."""
    return not normalize(text or "").strip()


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many user turns in a row, ending with the latest, the bot did not understand.

    Counted from the conversation itself rather than a counter slot, so that an
    understood message in between starts the count again ("连续两次没听懂"); a
    handoff (which sets ``fallback_count`` to 0) starts it again too. A blank message
    is no misunderstanding (a thumb on the send button): it neither counts nor breaks
    the run.
    """
    count = 0
    fell_back = True  # the latest message, which triggered this fallback
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "slot" and event.get("name") == "fallback_count" and not event.get("value"):
            break  # a person was brought in already: count afresh
        if kind == "action" and event.get("name") == "action_fallback":
            fell_back = True
        elif kind == "user":
            if not fell_back:
                break
            fell_back = False
            if not blank(event.get("text")):
                count += 1
    return count


class ActionFallback(Action):
    """Say honestly that we did not understand; the second time in a row, bring a person in."""

    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        from actions.inquiry import answer_if_sure
        from actions.live import ASK, SLOT, _session_of, live_message, start_handoff

        # This is also the core fallback (no rule applies): without an explicit
        # listen, the policies would predict this action again in the same turn.
        cleared: list[EventType] = []
        slot = tracker.get_slot(SLOT)
        if slot:
            if slot == ASK or _session_of(tracker) is not None:
                # a person has (or is about to have) the conversation: theirs to answer
                return [*live_message(dispatcher, tracker, domain), FollowupAction("action_listen")]
            cleared = [SlotSet(SLOT, None)]  # the session ended meanwhile: the bot answers
        text = tracker.latest_message.get("text") or ""
        if blank(text):
            dispatcher.utter_message(response="utter_nothing_typed")
            return [*cleared, FollowupAction("action_listen")]
        if answer_if_sure(dispatcher, text):
            # The intent model was unsure, the knowledge base is sure ("医保卡里还剩多少钱"):
            # the citizen was understood after all, and the run of misunderstandings ends.
            return [*cleared, SlotSet("fallback_count", 0), FollowupAction("action_listen")]
        count = consecutive_fallbacks(tracker)
        if count >= FALLBACKS_BEFORE_HANDOFF:
            return [*cleared, *start_handoff(dispatcher, tracker, domain),
                    FollowupAction("action_listen")]
        dispatcher.utter_message(response="utter_default")
        return [*cleared, SlotSet("fallback_count", count), FollowupAction("action_listen")]


def danger_of(tracker: Tracker) -> Danger | None:
    """The danger the NLU recognised in the latest message (or the rules, on its text).

    The pipeline's ``EmergencyDetector`` puts it in the parse; the text is checked
    again for messages parsed before it was there (an older model, a button).
    """
    found = tracker.latest_message.get("emergency")
    if isinstance(found, dict) and found.get("response"):
        return Danger(str(found["response"]), str(found.get("keyword") or ""),
                      bool(found.get("question")))
    return recognise(tracker.latest_message.get("text") or "")


def handle_emergency(
    dispatcher: CollectingDispatcher, tracker: Tracker, danger: Danger | None = None
) -> list[EventType]:
    """Tell the citizen which number to call first; the ticket comes second.

    A citizen who only asks for the number ("燃气泄漏打什么电话") gets it and no
    ticket: nothing is happening that a department could follow up.
    """
    danger = danger or danger_of(tracker)
    text = tracker.latest_message.get("text") or ""
    dispatcher.utter_message(response=danger.response if danger else "utter_emergency_unknown")
    if danger is not None and danger.question:
        return []
    new = NewTicket(
        channel=channel_of(tracker),
        kind="emergency",
        summary=text[:120],
        description=text,
        sender_id=tracker.sender_id,
        source=tracker.sender_id,
        idempotency_key=message_key(tracker, "emergency"),
        place=next(tracker.get_latest_entity_values("place"), None),
        category=tracker.latest_message.get("category"),
        category_confidence=tracker.latest_message.get("category_confidence"),
        transcript=transcript(tracker)[-10:],
        facts={"danger": danger.as_dict()} if danger else {},
    )
    try:
        ticket = store().create(new)
    except TicketError:
        return []
    dispatcher.utter_message(response="utter_emergency_logged", number=ticket.number)
    return [SlotSet("last_ticket", ticket.number)]


class ActionEmergency(Action):
    """Tell the citizen which number to call first; the ticket comes second."""

    def name(self) -> str:
        return "action_emergency"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return handle_emergency(dispatcher, tracker)
