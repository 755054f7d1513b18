"""Following a ticket from the chat: status by number, "我的工单", adding information.

Only a ticket's owner (the conversation that filed it, ``channel:id``) hears its
department, reply or text. Anyone else who names a number learns its status
word and nothing more; a ticket filed by phone or Open311 (no chat owner) can
be claimed by proving the phone number on it (:class:`ActionClaimTicket`).
"""

from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import citizen, format_deadline, latest_entity, response_text, store
from bot.tickets import (
    PermissionDenied,
    TicketError,
    TicketNotFound,
    TicketView,
    normalize_ticket_number,
)

logger = logging.getLogger(__name__)

#: how many tickets "我的工单" lists, newest first
MY_TICKETS_SHOWN = 5


def say_status(dispatcher: CollectingDispatcher, domain: DomainDict, ticket: TicketView) -> None:
    status = str(ticket.status.value if hasattr(ticket.status, "value") else ticket.status)
    deadline_note = ""
    if ticket.deadline and status in ("received", "dispatched", "in_progress"):
        deadline_note = response_text(domain, "utter_deadline_note").format(
            deadline=format_deadline(ticket.deadline)
        )
    dispatcher.utter_message(
        response=f"utter_status_{status}",
        number=ticket.number,
        department=ticket.department or "",
        reply=ticket.reply or "",
        deadline_note=deadline_note,
        primary=getattr(ticket, "duplicate_of", None) or "",
    )


class ActionTicketStatus(Action):
    def name(self) -> str:
        return "action_ticket_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        number = latest_entity(tracker, "ticket_number")
        if not number:
            mine = store().list(actor=citizen(tracker), limit=1)
            if mine:
                say_status(dispatcher, domain, mine[0])
                return []
            dispatcher.utter_message(response="utter_ask_ticket_number")
            return []
        try:
            ticket = store().get(number, citizen(tracker))
        except TicketNotFound:
            dispatcher.utter_message(
                response="utter_ticket_not_found", number=normalize_ticket_number(number) or number
            )
            return []
        except PermissionDenied:
            # the number, never who asked: ticket numbers are not personal data
            logger.info("status of %s asked by a non-owner: public status only", number)
            return say_public_status(dispatcher, domain, number)
        say_status(dispatcher, domain, ticket)
        return [SlotSet("ticket_number", ticket.number)]


def say_public_status(
    dispatcher: CollectingDispatcher, domain: DomainDict, number: str
) -> list[EventType]:
    """What a stranger may know: the status word; and, for a phone-filed ticket, how to claim it."""
    found, status, owned = store().public_status(number)
    dispatcher.utter_message(
        response="utter_status_public",
        number=found,
        status=response_text(domain, f"utter_status_name_{status.value}"),
    )
    if owned:
        return []
    dispatcher.utter_message(response="utter_ask_claim_phone", number=found)
    return [SlotSet("claim_ticket", found)]


class ActionClaimTicket(Action):
    """The citizen typed the phone number left on a ticket filed by phone: it becomes theirs."""

    def name(self) -> str:
        return "action_claim_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        number = tracker.get_slot("claim_ticket")
        phone = latest_entity(tracker, "phone")
        if not number or not phone:
            dispatcher.utter_message(response="utter_claim_refused", number=number or "")
            return [SlotSet("claim_ticket", None)]
        try:
            ticket = store().claim(number, phone, citizen(tracker))
        except TicketNotFound:
            dispatcher.utter_message(response="utter_ticket_not_found", number=number)
            return [SlotSet("claim_ticket", None)]
        except PermissionDenied:
            logger.info("claim of %s refused (wrong number or too many tries)", number)
            dispatcher.utter_message(response="utter_claim_refused", number=number)
            return [SlotSet("claim_ticket", None)]
        dispatcher.utter_message(response="utter_claimed", number=ticket.number)
        say_status(dispatcher, domain, ticket)
        return [SlotSet("claim_ticket", None), SlotSet("ticket_number", ticket.number)]


class ActionListTickets(Action):
    def name(self) -> str:
        return "action_list_tickets"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        tickets = store().list(actor=citizen(tracker), limit=MY_TICKETS_SHOWN)
        if not tickets:
            dispatcher.utter_message(response="utter_my_tickets_none")
            return []
        line = response_text(domain, "utter_ticket_line")
        lines = []
        for ticket in tickets:
            status = str(getattr(ticket.status, "value", ticket.status))
            lines.append(
                line.format(
                    number=ticket.number,
                    status=response_text(domain, f"utter_status_name_{status}"),
                    summary=ticket.public_dict()["summary"][:20],
                )
            )
        dispatcher.utter_message(
            response="utter_my_tickets", count=len(tickets), lines="\n".join(lines)
        )
        return []


class ActionAddInfo(Action):
    """Append what the citizen adds to their ticket (the number named, else their latest)."""

    def name(self) -> str:
        return "action_add_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        number = latest_entity(tracker, "ticket_number") or tracker.get_slot("last_ticket")
        if not number:
            mine = store().list(actor=citizen(tracker), limit=1)
            number = mine[0].number if mine else None
        if not number:
            dispatcher.utter_message(response="utter_ask_info_ticket")
            return []
        text = tracker.latest_message.get("text") or ""
        try:
            ticket = store().add_info(number, text, citizen(tracker))
        except (TicketNotFound, PermissionDenied):
            # someone else's ticket looks exactly like a wrong number
            logger.info("add-info to %s refused: not found or not this conversation's", number)
            dispatcher.utter_message(response="utter_ticket_not_found", number=number)
            return []
        except TicketError:
            # closed or merged tickets take no more information
            dispatcher.utter_message(response="utter_ticket_closed_for_info", number=number)
            return []
        dispatcher.utter_message(response="utter_info_added", number=ticket.number)
        return [SlotSet("last_ticket", ticket.number)]
