"""咨询: answer from the knowledge base in ``data/kb/``, or ask which entry was meant."""

from __future__ import annotations

from functools import lru_cache

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.kb import Answer, Clarify, KnowledgeBase


@lru_cache(maxsize=1)
def knowledge_base() -> KnowledgeBase:
    """Loaded once per action-server process; the index is built at load time."""
    return KnowledgeBase.load()


class ActionAnswerInquiry(Action):
    def name(self) -> str:
        return "action_answer_inquiry"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        decision = knowledge_base().decide(text)
        if isinstance(decision, Answer):
            say_answer(dispatcher, decision)
        elif isinstance(decision, Clarify):
            buttons = [
                {"title": hit.entry.questions[0], "payload": hit.entry.questions[0]}
                for hit in decision.hits[:3]
            ]
            dispatcher.utter_message(response="utter_kb_clarify", buttons=buttons)
        elif _maybe_off_domain(tracker):
            dispatcher.utter_message(response="utter_out_of_scope")
        else:
            dispatcher.utter_message(response="utter_kb_not_found")
        return []


class ActionOutOfScope(Action):
    """Read as no government matter: still answered when the knowledge base knows it.

    The intent model learns off-domain requests from a general assistant's users; a
    government question in similar words ("随迁子女上学有什么条件", "违章罚款去哪交")
    can read as one. The knowledge base is a second, independent reader: when it has
    a confident answer (2 of the 2,578 shared off-domain requests, 7 of the 9 inquiries
    the cross-validation read as off-domain), the citizen gets it. Its weaker matches
    (the three-question choice) are not offered here: they fire on 2 % of real
    off-domain requests ("替我回复邮件").
    """

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        if not answer_if_sure(dispatcher, text):
            dispatcher.utter_message(response="utter_out_of_scope")
        return []


def answer_if_sure(dispatcher: CollectingDispatcher, text: str) -> bool:
    """Say the knowledge base's answer when it is sure of one (never its weaker choice).

    The second, independent reader for what the intent model read as off-domain or
    could not read at all; the three-question choice fires on 2 % of real
    off-domain requests, so it is not offered on these paths. A button's payload
    ("/affirm") is no question.
    """
    if text.startswith("/"):
        return False
    decision = knowledge_base().decide(text)
    if not isinstance(decision, Answer):
        return False
    say_answer(dispatcher, decision)
    return True


def say_answer(dispatcher: CollectingDispatcher, decision: Answer) -> None:
    """The knowledge base's answer with its source and the department behind it."""
    entry = decision.entry
    dispatcher.utter_message(
        response="utter_kb_answer",
        answer=entry.answer,
        source=entry.source,
        department=entry.department,
    )


#: below the served fallback threshold: an intent this likely is a real doubt, not noise
OFF_DOMAIN_DOUBT = 0.2


def _maybe_off_domain(tracker: Tracker) -> bool:
    """Whether a question the knowledge base cannot answer may be no government matter.

    "去泰国旅游要带什么" reads as a question (inquire 0.68) but the model also gives
    out_of_scope 0.31; when the knowledge base knows nothing about it either, the honest
    answer is what this assistant can do, not "I cannot answer this yet, ask a person".
    """
    ranking = tracker.latest_message.get("intent_ranking") or []
    return any(
        item.get("name") == "out_of_scope" and (item.get("confidence") or 0) >= OFF_DOMAIN_DOUBT
        for item in ranking
    )
