"""The state machine of a ticket: the only place transitions and rights are defined.

受理 received → 派单 dispatched → 办理 in_progress → 答复 replied → 回访 follow_up →
办结 closed, with the centre's 直接答复 (received → replied), reopen (回访不满意),
transfer (转派) and return (退回), merge (合并) and 督办 escalation. The store asks
:func:`check` before every change, so a new rule is added here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bot.tickets import messages
from bot.tickets.errors import IllegalTransition, InvalidInput, PermissionDenied
from bot.tickets.models import Actor, Role, Status


class Action(str, Enum):
    CREATE = "create"
    DISPATCH = "dispatch"
    START = "start"
    REPLY = "reply"
    FOLLOW_UP = "follow_up"
    RATE_CLOSE = "rate_close"
    RATE_REOPEN = "rate_reopen"
    CLOSE = "close"
    TRANSFER = "transfer"
    RETURN = "return"
    MERGE = "merge"
    MERGED_IN = "merged_in"
    ESCALATE = "escalate"
    ADD_INFO = "add_info"
    NOTE = "note"
    PAUSE = "pause"
    RESUME = "resume"
    CONTACT_VIEWED = "contact_viewed"
    #: staff found the ticket by the citizen's full phone number (search over the keyed index)
    CONTACT_SEARCHED = "contact_searched"
    PURGE = "purge"
    REKEY = "rekey"
    #: a citizen proves the phone number on a ticket filed with no chat identity
    CLAIM = "claim"
    CLAIM_REFUSED = "claim_refused"
    #: staff write (or withdraw) the public status note, the only text Open311 shows
    PUBLISH = "publish"

    def __str__(self) -> str:
        return self.value


S = Status
R = Role

#: clocks run and 督办 applies while the ticket waits on government, not the citizen
ACTIVE = frozenset({S.RECEIVED, S.DISPATCHED, S.IN_PROGRESS})
OPEN = frozenset({S.RECEIVED, S.DISPATCHED, S.IN_PROGRESS, S.REPLIED, S.FOLLOW_UP})
ALL = frozenset(Status)
STAFF = frozenset({R.DISPATCHER, R.DEPARTMENT, R.SUPERVISOR, R.ADMIN})
CENTRE = frozenset({R.DISPATCHER, R.SUPERVISOR, R.ADMIN})


@dataclass(frozen=True)
class Rule:
    sources: frozenset[Status]
    #: None: the status does not change (notes, escalation, pauses)
    target: Status | None
    roles: frozenset[Role]
    reason_required: bool = False


RULES: dict[Action, Rule] = {
    Action.CREATE: Rule(frozenset(), S.RECEIVED, frozenset({R.CITIZEN, R.SYSTEM, *CENTRE})),
    Action.DISPATCH: Rule(frozenset({S.RECEIVED}), S.DISPATCHED, frozenset({R.SYSTEM, *CENTRE})),
    Action.START: Rule(frozenset({S.DISPATCHED}), S.IN_PROGRESS, STAFF),
    # 直接答复: the centre answers what it can itself (a call-back, a policy question)
    # without dispatching it; department staff reach only their department's tickets
    Action.REPLY: Rule(frozenset({S.RECEIVED, S.DISPATCHED, S.IN_PROGRESS}), S.REPLIED, STAFF),
    Action.FOLLOW_UP: Rule(
        frozenset({S.REPLIED}), S.FOLLOW_UP, frozenset({R.CITIZEN, R.SYSTEM, *CENTRE})
    ),
    Action.RATE_CLOSE: Rule(frozenset({S.FOLLOW_UP}), S.CLOSED, frozenset({R.CITIZEN, *CENTRE})),
    Action.RATE_REOPEN: Rule(
        frozenset({S.FOLLOW_UP}), S.IN_PROGRESS, frozenset({R.CITIZEN, *CENTRE})
    ),
    Action.CLOSE: Rule(frozenset({S.FOLLOW_UP}), S.CLOSED, CENTRE, reason_required=True),
    Action.TRANSFER: Rule(
        frozenset({S.DISPATCHED, S.IN_PROGRESS}), S.DISPATCHED, CENTRE, reason_required=True
    ),
    Action.RETURN: Rule(
        frozenset({S.DISPATCHED, S.IN_PROGRESS}), S.RECEIVED, STAFF, reason_required=True
    ),
    Action.MERGE: Rule(frozenset({S.RECEIVED, S.DISPATCHED, S.IN_PROGRESS}), S.MERGED, CENTRE),
    Action.MERGED_IN: Rule(OPEN | {S.CLOSED}, None, CENTRE),
    Action.ESCALATE: Rule(ACTIVE, None, frozenset({R.SYSTEM, R.SUPERVISOR, R.ADMIN})),
    Action.ADD_INFO: Rule(OPEN, None, frozenset({R.CITIZEN, R.SYSTEM, *STAFF})),
    Action.NOTE: Rule(ALL, None, frozenset({R.SYSTEM, *STAFF})),
    Action.PAUSE: Rule(frozenset({S.DISPATCHED, S.IN_PROGRESS}), None, STAFF, reason_required=True),
    Action.RESUME: Rule(
        frozenset({S.DISPATCHED, S.IN_PROGRESS}), None, frozenset({R.SYSTEM, *STAFF})
    ),
    Action.CONTACT_VIEWED: Rule(ALL, None, STAFF),
    Action.CONTACT_SEARCHED: Rule(ALL, None, STAFF),
    Action.PURGE: Rule(frozenset({S.CLOSED, S.MERGED}), None, frozenset({R.SYSTEM, R.ADMIN})),
    Action.REKEY: Rule(ALL, None, frozenset({R.SYSTEM, R.ADMIN})),
    Action.CLAIM: Rule(OPEN | {S.CLOSED}, None, frozenset({R.CITIZEN})),
    Action.CLAIM_REFUSED: Rule(OPEN | {S.CLOSED}, None, frozenset({R.CITIZEN})),
    Action.PUBLISH: Rule(ALL, None, STAFF),
}

#: what a citizen may do to a ticket that belongs to no chat identity yet
_UNOWNED = frozenset({Action.CLAIM, Action.CLAIM_REFUSED})

#: actions department staff may take on their own department's tickets only
_DEPARTMENT_BOUND = frozenset(RULES) - {Action.CREATE}


def check(
    action: Action,
    status: Status | None,
    actor: Actor,
    department: str | None,
    *,
    reason: str = "",
    owner: str | None = None,
) -> Status | None:
    """Refuse or allow ``action``; return the status after it (``status`` if unchanged).

    Rights are checked before the state so that a caller learns nothing about a
    ticket it may not touch. ``owner`` is the ticket's sender id
    (``channel:id``, :mod:`bot.tickets.citizens`): a citizen may touch only the
    tickets they own. A ticket filed with no chat identity (hotline, Open311)
    has no owner; the only thing a citizen may do to it is claim it, and only
    while nobody has.
    """
    rule = RULES[action]
    if actor.role not in rule.roles:
        raise PermissionDenied(messages.ROLE_DENIED.format(role=actor.role.value, action=action))
    if actor.role is Role.CITIZEN and action is not Action.CREATE:
        if action in _UNOWNED:
            if owner is not None:
                raise PermissionDenied(messages.NOT_OWNER)
        elif owner is None or owner != actor.name:
            raise PermissionDenied(messages.NOT_OWNER)
    if (
        actor.role is Role.DEPARTMENT
        and action in _DEPARTMENT_BOUND
        and (actor.department is None or actor.department != department)
    ):
        raise PermissionDenied(
            messages.OTHER_DEPARTMENT.format(
                actor=actor.name, actor_department=actor.department, department=department
            )
        )
    if status is not None and status not in rule.sources:
        raise IllegalTransition(messages.ILLEGAL.format(action=action, status=status.value))
    if rule.reason_required and not reason.strip():
        raise InvalidInput(messages.REASON_REQUIRED.format(action=action))
    return rule.target if rule.target is not None else status


def allowed_actions(status: Status, actor: Actor, department: str | None) -> list[Action]:
    """What the console may offer this actor on a ticket in ``status``."""
    result = []
    for action in RULES:
        if action in (
            Action.CREATE,
            Action.MERGED_IN,
            Action.PURGE,
            Action.REKEY,
            Action.CONTACT_SEARCHED,
            *_UNOWNED,
        ):
            continue
        try:
            check(action, status, actor, department, reason="x")
        except (IllegalTransition, PermissionDenied):
            continue
        result.append(action)
    return result
