"""Filing a complaint, report, request for help or suggestion: the ``case_form``.

The form asks for what is missing, lets the citizen correct any answer by just
saying it again, reads the case back, and creates the ticket only after an
explicit confirmation.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    MIN_DESCRIPTION_CHARS,
    attachments,
    carries_attachment,
    channel_of,
    format_deadline,
    message_key,
    request_id,
    response_text,
    store,
    transcript,
)
from actions.corrections import Correction, parse_correction
from actions.inquiry import answer_if_sure
from actions.support import danger_of, handle_emergency
from bot.privacy import mask_phone
from bot.tickets import NewTicket, TicketError
from bot.tickets.models import KIND_BY_INTENT
from nlu.identifiers import find_identifiers, first_phone
from nlu.text import normalize_with_offsets

#: intent that opened the case → ticket kind
DECLINED = "declined"
CASE_SLOTS = (
    "case_kind",
    "case_description",
    "case_place",
    "case_time",
    "contact_phone",
    "case_confirmed",
    "case_category",
    "case_category_confidence",
)
#: the answers a citizen gives; changing one after the read-back asks to confirm again
ANSWER_SLOTS = frozenset({"case_description", "case_place", "case_time", "contact_phone"})
#: entities that fill an answer slot by themselves (see the slot mappings in case.yml)
ANSWER_ENTITIES = frozenset({"place", "time", "phone"})
#: an affirm at least this sure is a plain "yes", never an answer to "where" or "when"
SURE_AFFIRM = 0.95


def _routing_slots(parse_data: dict[str, Any]) -> list[EventType]:
    return [
        SlotSet("case_category", parse_data.get("category")),
        SlotSet("case_category_confidence", parse_data.get("category_confidence")),
    ]


#: kinds of case that a knowledge-base answer may settle first ("社保卡丢了咋整" is
#: a request for help that the KB answers); a complaint or a report is always a case,
#: even when it also asks a question
ANSWER_FIRST_KINDS = frozenset({"help"})


def answer_first(dispatcher: CollectingDispatcher, text: str) -> bool:
    """Answer from the knowledge base when it is sure, offering to go on with a case."""
    if not answer_if_sure(dispatcher, text):
        return False
    dispatcher.utter_message(response="utter_kb_then_case")
    return True


class ActionStartCase(Action):
    """Open a new case: remember its kind, and keep the first message as its description.

    A place the first message names ("幸福小区3号楼楼下天天有人烧烤") is taken and
    not asked again: an elderly citizen who said where should not be asked where.
    A generic one ("小区楼下") is dropped by the NLU's ``GenericPlaceFilter`` and
    asked for, since it is no address a department can go to; the read-back shows
    the place taken, so a misread one is corrected there. Time is always asked:
    "好几天" in a first message says how long, rarely when.
    """

    def name(self) -> str:
        return "action_start_case"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = (tracker.latest_message.get("text") or "").strip()
        danger = danger_of(tracker)
        if danger is not None:
            # Understood as a complaint or a request for help, but it names a fire,
            # a gas leak, a crime or an emergency: the number to call comes first,
            # and no form runs before it (the ticket is filed at once).
            filed = handle_emergency(dispatcher, tracker, danger)
            return [*filed, FollowupAction("action_listen")]
        intent = tracker.latest_message.get("intent", {}).get("name")
        kind = KIND_BY_INTENT.get(intent or "", "complaint")
        typed = not text.startswith("/")
        if typed and kind in ANSWER_FIRST_KINDS:
            answered = answer_first(dispatcher, text)
            if answered:
                return [SlotSet("pending_case", text), FollowupAction("action_listen")]
        dispatcher.utter_message(response=f"utter_case_start_{'help' if kind == 'help' else kind}")
        events: list[EventType] = [SlotSet(slot, None) for slot in CASE_SLOTS]
        events.append(SlotSet("case_kind", kind))
        events.append(SlotSet("pending_case", None))
        if len(text) >= MIN_DESCRIPTION_CHARS and typed:
            events.append(SlotSet("case_description", text))
            events.extend(_routing_slots(tracker.latest_message))
        elif tracker.get_slot("pending_case"):
            # "还要反映问题" after a knowledge-base answer: the case is what they first wrote
            events.append(SlotSet("case_description", tracker.get_slot("pending_case")))
        phone = next(tracker.get_latest_entity_values("phone"), None)
        if phone:
            events.append(SlotSet("contact_phone", phone))
        return events


def _opening_turn(tracker: Tracker) -> bool:
    """Whether the form is validating the message that opened the case.

    The form extracts entities from that message too; place and time found
    there are asked for anyway (see :class:`ActionStartCase`).
    """
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "action" and event.get("name") == "action_start_case":
            return True
    return False


def _value_before_latest_message(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the latest user message was processed."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


def _place_or_time(tracker: Tracker, slot: str, value: Any) -> str | None:
    """Accept a place or time only when it answers the question asked, or corrects the read-back.

    The NLU tags places and times in any message ("枫林路" was once tagged a time);
    taken from a message that answered another question, such an entity would fill
    the wrong answer. Corrections in the middle of the form go by cue words instead
    (see :mod:`actions.corrections`); of the opening message only a named place
    counts (see :class:`ActionStartCase`).
    """
    if _opening_turn(tracker):
        return _named_place(tracker, value) if slot == "case_place" else None
    requested = tracker.get_slot("requested_slot")
    if requested not in (slot, "case_confirmed"):
        return _value_before_latest_message(tracker, slot)
    if requested == slot and _just_yes(tracker):
        return None  # "好的" is not a place: ask again
    return _without_numbers(value) or None


#: the words that introduce a number ("电话是", "我的手机号码："), cut out with it
_NUMBER_CUE = re.compile(
    r"(?:我的)?(?:手机|电话|座机|联系方式|身份证)?(?:号码?)?(?:是|为)?[\s:：]*$"
)


def _without_numbers(value: Any) -> str:
    """The answer with its phone, 身份证 and ticket numbers cut out ("" when nothing else).

    A citizen asked "什么时候开始的" may type their phone number instead (the next
    question is often on the screen already); kept whole, it would be filed as the time
    and shown unmasked in the read-back. The number still reaches its own slot through
    the phone entity; the question that was not answered is asked again.
    """
    text = str(value or "").strip()
    normal, origin = normalize_with_offsets(text)
    found = find_identifiers(normal)
    if not found:
        return text
    for item in reversed(found):  # found in the normalised copy, cut from the text as typed
        cue = _NUMBER_CUE.search(normal, 0, item.start)
        start = cue.start() if cue else item.start
        text = text[: origin[start]] + " " + text[origin[item.end - 1] + 1 :]
    return re.sub(r"\s+", " ", text).strip(" ,，.。;；:：、!！")


#: a named place is at least this long (人民路, 幸福小区); shorter ones are asked for
MIN_NAMED_PLACE = 3


def _named_place(tracker: Tracker, value: Any) -> str | None:
    """The place the opening message names, when the NLU found one worth going to."""
    place = str(value or "").strip()
    text = tracker.latest_message.get("text") or ""
    found = {
        str(entity.get("value") or "").strip()
        for entity in tracker.latest_message.get("entities") or []
        if entity.get("entity") == "place"
    }
    if len(place) >= MIN_NAMED_PLACE and place in found and place in text:
        return place
    return None


def _just_yes(tracker: Tracker) -> bool:
    """A plain "好的/可以": a sure ``affirm`` carrying no place, time or phone.

    The form takes ``affirm`` messages as answers, because the NLU sometimes reads
    a short answer such as "这个星期" as one (with less confidence).
    """
    intent = tracker.latest_message.get("intent") or {}
    return (
        intent.get("name") == "affirm"
        and float(intent.get("confidence") or 0.0) >= SURE_AFFIRM
        and not _carries_answer_entity(tracker)
    )


def _correction(tracker: Tracker) -> Correction | None:
    """The correction in the latest message, never in the one that opened the case."""
    text = tracker.latest_message.get("text") or ""
    if not text or text.startswith("/") or _opening_turn(tracker):
        return None
    return parse_correction(text)


def _carries_answer_entity(tracker: Tracker) -> bool:
    entities = tracker.latest_message.get("entities") or []
    return any(entity.get("entity") in ANSWER_ENTITIES for entity in entities)


class ValidateCaseForm(FormValidationAction):
    """Checks each answer; any change after the read-back asks for confirmation again."""

    def name(self) -> str:
        return "validate_case_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if carries_attachment(tracker):
            # A picture is evidence for the case, not the answer to the question
            # asked: keep the slots as they are (it is filed with the ticket).
            requested = tracker.get_slot("requested_slot")
            return [SlotSet(requested, tracker.slots.get(requested))] if requested else []
        events = await super().run(dispatcher, tracker, domain)
        requested = tracker.get_slot("requested_slot")
        correction = _correction(tracker)
        if correction is not None:
            events.extend(self._apply(correction, requested, dispatcher, tracker))
        changed = {
            e["name"]: e.get("value")
            for e in events
            if e.get("event") == "slot" and e["name"] in ANSWER_SLOTS
        }
        if requested == "case_confirmed" and changed:
            # The citizen corrected something at the read-back: read it back again
            # (or first ask again for what they said was wrong).
            if all(value is not None for value in changed.values()):
                dispatcher.utter_message(response="utter_case_corrected")
            events.append(SlotSet("case_confirmed", None))
        return events

    def _apply(
        self,
        correction: Correction,
        requested: str | None,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> list[EventType]:
        """Slot events for "不对，地址是…": the named answer changes, nothing else does."""
        if correction.slot == requested == "case_description":
            return []  # "问题是……" answers the question; the whole text is the description
        events: list[EventType] = []
        if requested not in (None, "case_confirmed", correction.slot):
            # The form took the message as the answer to its question; it was not one.
            events.append(SlotSet(requested, None))
        value = correction.value
        if value is not None and correction.slot == "contact_phone":
            value = first_phone(value)
        if (
            value is not None
            and correction.slot == "case_description"
            and len(value) < MIN_DESCRIPTION_CHARS
        ):
            dispatcher.utter_message(response="utter_case_description_too_short")
            value = None
        events.append(SlotSet(correction.slot, value))
        return events

    def validate_case_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"case_description": None}  # reset by action_start_case: nothing to check
        text = str(value or "").strip()
        if len(_without_numbers(text)) < MIN_DESCRIPTION_CHARS:
            dispatcher.utter_message(response="utter_case_description_too_short")
            return {"case_description": None}
        result: dict[str, Any] = {"case_description": text}
        if tracker.latest_message.get("text") == value:
            result["case_category"] = tracker.latest_message.get("category")
            result["case_category_confidence"] = tracker.latest_message.get("category_confidence")
        return result

    def validate_case_place(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"case_place": _place_or_time(tracker, "case_place", value)}

    def validate_case_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"case_time": _place_or_time(tracker, "case_time", value)}

    def validate_contact_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"contact_phone": None}  # reset by action_start_case: nothing to check
        text = str(value or "").strip()
        if text == DECLINED:
            return {"contact_phone": DECLINED}
        found = first_phone(text)
        if found:
            return {"contact_phone": found}
        if _just_yes(tracker):
            # "可以" to "方便留个手机号吗": the number comes next
            dispatcher.utter_message(response="utter_phone_please")
            return {"contact_phone": None}
        intent = tracker.latest_message.get("intent", {}).get("name")
        if intent == "deny" or not re.search(r"\d", text):
            # No number given at all: the citizen declines, which is their right.
            return {"contact_phone": DECLINED}
        dispatcher.utter_message(response="utter_phone_invalid")
        return {"contact_phone": None}

    def validate_case_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is True:
            return {"case_confirmed": True}
        if value is None:
            return {"case_confirmed": None}  # reset, not a "no"
        if _correction(tracker) is None and not _carries_answer_entity(tracker):
            # "不对" alone: ask what to change. "不对，地址是…" is handled in run().
            dispatcher.utter_message(response="utter_ask_what_to_change")
        return {"case_confirmed": None}


class ActionAskCaseConfirmed(Action):
    """Read the whole case back before anything is filed."""

    def name(self) -> str:
        return "action_ask_case_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        phone = tracker.get_slot("contact_phone")
        if phone == DECLINED or not phone:
            phone_text = response_text(domain, "utter_phone_declined")
        else:
            phone_text = mask_phone(phone)
        dispatcher.utter_message(
            response="utter_case_readback",
            description=tracker.get_slot("case_description") or "",
            place=tracker.get_slot("case_place") or "",
            time=tracker.get_slot("case_time") or "",
            phone=phone_text,
        )
        return []


class ActionSubmitCase(Action):
    """Create the ticket, exactly once per confirmation message."""

    def name(self) -> str:
        return "action_submit_case"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if tracker.get_slot("case_confirmed") is not True:
            return []
        phone = tracker.get_slot("contact_phone")
        description = tracker.get_slot("case_description") or ""
        new = NewTicket(
            channel=channel_of(tracker),
            kind=tracker.get_slot("case_kind") or "complaint",
            summary=description[:120],
            description=description,
            sender_id=tracker.sender_id,
            source=tracker.sender_id,
            idempotency_key=message_key(tracker, "case"),
            place=tracker.get_slot("case_place"),
            occurred=tracker.get_slot("case_time"),
            phone=None if phone in (None, DECLINED) else phone,
            category=tracker.get_slot("case_category"),
            category_confidence=tracker.get_slot("case_category_confidence"),
            transcript=transcript(tracker, since_action="action_start_case"),
            attachments=attachments(tracker, since_action="action_start_case"),
            facts={"request_id": request_id(tracker)},
        )
        try:
            ticket = store().create(new)
        except TicketError:
            dispatcher.utter_message(response="utter_case_store_error")
            return [SlotSet("case_confirmed", None)]
        if ticket.department and ticket.status != "received":
            routing = response_text(domain, "utter_case_routed").format(
                department=ticket.department
            )
        else:
            routing = response_text(domain, "utter_case_manual_dispatch")
        dispatcher.utter_message(
            response="utter_case_created",
            number=ticket.number,
            routing=routing,
            deadline=format_deadline(ticket.deadline),
        )
        return [SlotSet(slot, None) for slot in CASE_SLOTS] + [
            SlotSet("last_ticket", ticket.number)
        ]


#: how many of the citizen's last messages "取消" may refer to
CANCEL_LOOKBACK_MESSAGES = 5


def sent_just_now(tracker: Tracker) -> str | None:
    """A ticket this conversation filed in its last few messages (the one "取消" may mean)."""
    messages = 0
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            messages += 1
            if messages > CANCEL_LOOKBACK_MESSAGES:
                return None
        elif kind == "action" and event.get("name") == "action_cancel_case" and messages > 1:
            return None  # already answered for that one
        elif kind == "slot" and event.get("name") == "last_ticket" and event.get("value"):
            return str(event["value"])
    return None


class ActionCancelCase(Action):
    """"取消": drop the case being filled in; never claim to withdraw what was sent.

    An emergency is filed the moment it is recognised, and a submitted ticket is
    already with a department: saying "已取消" then would be a lie the citizen acts on.
    """

    def name(self) -> str:
        return "action_cancel_case"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        drafting = tracker.active_loop_name == "case_form"
        sent = sent_just_now(tracker)
        if drafting:
            dispatcher.utter_message(response="utter_case_cancelled")
        if sent:
            dispatcher.utter_message(response="utter_cancel_already_sent", number=sent)
        elif not drafting:
            dispatcher.utter_message(response="utter_nothing_to_cancel")
        return [
            *(SlotSet(slot, None) for slot in CASE_SLOTS),
            SlotSet("requested_slot", None),
            ActiveLoop(None),
        ]
