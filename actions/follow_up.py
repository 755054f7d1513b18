"""Telling the citizen about staff's answer, and the 回访 that follows it.

The console calls Rasa's ``trigger_intent`` with ``EXTERNAL_ticket_update`` and
the ticket number; a rule runs :class:`ActionNotifyCitizen` in the citizen's own
conversation, so the answer arrives on the channel they used.
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import citizen, latest_entity, store
from bot.tickets import Actor, TicketError


class ActionNotifyCitizen(Action):
    def name(self) -> str:
        return "action_notify_citizen"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        number = latest_entity(tracker, "ticket_number")
        if not number:
            return []
        try:
            # only the owner's conversation hears the reply, whoever triggered it
            ticket = store().get(number, citizen(tracker))
        except TicketError:
            return []
        status = str(getattr(ticket.status, "value", ticket.status))
        if status == "closed":
            dispatcher.utter_message(
                response="utter_ticket_closed_notice",
                number=ticket.number,
                reply=ticket.reply or "",
            )
            return []
        if status not in ("replied", "follow_up"):
            return []
        dispatcher.utter_message(
            response="utter_ticket_reply", number=ticket.number, reply=ticket.reply or ""
        )
        if status == "replied":
            try:
                store().request_follow_up(ticket.number, Actor.system())
            except TicketError:
                return []
        dispatcher.utter_message(response="utter_ask_rating")
        return [SlotSet("follow_up_ticket", ticket.number), SlotSet("follow_up_rating", None)]


class ActionFollowUp(Action):
    """Collect the score, then whether it is solved; "not solved" reopens the ticket."""

    def name(self) -> str:
        return "action_follow_up"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        number = tracker.get_slot("follow_up_ticket")
        if not number:
            dispatcher.utter_message(response="utter_thank")
            return []
        intent = tracker.latest_message.get("intent", {}).get("name")
        rating = latest_entity(tracker, "rating")
        events: list[EventType] = []
        if rating and rating.isdigit() and 1 <= int(rating) <= 5:
            events.append(SlotSet("follow_up_rating", float(rating)))
        current = next(
            (e["value"] for e in events if e.get("name") == "follow_up_rating"),
            tracker.get_slot("follow_up_rating"),
        )
        if intent not in ("solved", "not_solved"):
            dispatcher.utter_message(response="utter_ask_solved")
            return events
        solved = intent == "solved"
        try:
            ticket = store().rate(
                number,
                score=int(current) if current else 0,
                solved=solved,
                comment=tracker.latest_message.get("text") or "",
                actor=citizen(tracker),
            )
        except TicketError:
            dispatcher.utter_message(response="utter_service_error")
            return events
        if solved:
            dispatcher.utter_message(response="utter_follow_up_thanks_closed", number=ticket.number)
        else:
            dispatcher.utter_message(
                response="utter_follow_up_reopened",
                number=ticket.number,
                department=ticket.department or "",
            )
        return [*events, SlotSet("follow_up_ticket", None), SlotSet("follow_up_rating", None)]
