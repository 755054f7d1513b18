"""The featurised session continued from where the last prediction left it.

RulePolicy featurises the whole session at every prediction (~3 a message): Rasa
replays every applied event into a fresh tracker and builds a state before each
action (``Domain.states_for_tracker_history`` over
``DialogueStateTracker.generate_all_prior_trackers``), so a prediction costs time in
proportion to the conversation's length, however little changed since the last.

Here the replayed tracker and the states built so far are kept on the tracker, and
the next request replays only the events added since — when that gives what a
replay from scratch gives:

* the events applied before are still applied, the same objects in the same order
  (an undo — ``ActionReverted``, ``UserUtteranceReverted``, a restart, a new
  session, a form's unhappy path — changes that list, and the session is replayed
  from scratch);
* every added event is of a kind whose ``apply_to`` changes only the tracker it is
  applied to. Some events change *another* event in place
  (``DefinePrevUserUtteredFeaturization`` and ``EntitiesAdded`` edit the last user
  message), which a replay from scratch sees in earlier turns too: after those the
  session is replayed from scratch — except a ``DefinePrevUserUtteredFeaturization``
  that comes before any state holding that message was built. That is the one the
  ensemble adds after each message's first prediction, so a message no longer
  starts a replay from scratch;
* the same domain and ``omit_unset_slots``.

Only the plain request (every turn, as RulePolicy asks) is served here; the kind
that hides rule-only turns is Rasa's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    BotUttered,
    DefinePrevUserUtteredFeaturization,
    FollowupAction,
    LoopInterrupted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

#: events whose ``apply_to`` changes only the tracker (exact types: a subclass may not)
CONTINUABLE = frozenset({ActionExecuted, ActionExecutionRejected, ActiveLoop, BotUttered,
                         FollowupAction, LoopInterrupted, SlotSet, UserUttered})
_KEPT = "_citizenbot_replay"


@dataclass
class _Replay:
    domain: Domain
    omit_unset_slots: bool
    applied: list[Any]
    tracker: DialogueStateTracker
    #: the state before each action replayed so far (the final state is not kept)
    states: list[dict[str, Any]]
    #: whether one of ``states`` was built after the latest user message was applied
    #: (it holds that message: an edit of the message would change it)
    holds_latest_user: bool


def serves(tracker: Any, domain: Any) -> bool:
    """Whether :func:`past_states` may stand in for Rasa's on these objects."""
    return type(tracker) is DialogueStateTracker and type(domain) is Domain


def past_states(tracker: DialogueStateTracker, domain: Domain,
                omit_unset_slots: bool) -> list[dict[str, Any]]:
    """``tracker.past_states(domain, omit_unset_slots)``, continuing the last replay.

    The states handed out are the caller's (built anew or copied): callers edit
    them, and the kept ones must stay as Rasa built them.
    """
    applied = tracker.applied_events()
    kept: _Replay | None = tracker.__dict__.get(_KEPT)
    if kept is not None and _continues(kept, applied, domain, omit_unset_slots):
        added = applied[len(kept.applied):]
        replay, states, holds = kept.tracker, kept.states, kept.holds_latest_user
    else:
        added, replay, states, holds = applied, tracker.init_copy(), [], False
    for event in added:
        if isinstance(event, ActionExecuted):
            states.append(_state(domain, replay, omit_unset_slots))
        holds = _holds_after(holds, event)
        replay.update(event)
    tracker.__dict__[_KEPT] = _Replay(domain, omit_unset_slots, applied, replay, states, holds)
    # copies: a state's sub-states are the replayed tracker's own objects (its latest
    # action), and callers edit what they get
    return copy_states([*states, _state(domain, replay, omit_unset_slots)])


def _continues(kept: _Replay, applied: list[Any], domain: Domain,
               omit_unset_slots: bool) -> bool:
    before = kept.applied
    if not (kept.domain is domain and kept.omit_unset_slots == omit_unset_slots
            and len(applied) >= len(before)
            and all(old is new for old, new in zip(before, applied[:len(before)],
                                                   strict=True))):
        return False
    holds = kept.holds_latest_user
    for event in applied[len(before):]:
        kind = type(event)
        if kind is DefinePrevUserUtteredFeaturization:
            if holds:  # it would edit a message that a kept state holds
                return False
        elif kind not in CONTINUABLE:
            return False
        holds = _holds_after(holds, event)
    return True


def _holds_after(holds: bool, event: Any) -> bool:
    """Whether a state holding the latest user message exists once ``event`` is
    replayed: a state is built at every action, a new message is in none yet."""
    if isinstance(event, ActionExecuted):
        return True
    if isinstance(event, UserUttered):
        return False
    return holds


def _state(domain: Domain, replay: DialogueStateTracker,
           omit_unset_slots: bool) -> dict[str, Any]:
    """What ``states_for_tracker_history`` appends for a turn (every turn kept)."""
    return domain._clean_state(domain.get_active_state(replay, omit_unset_slots=omit_unset_slots))


def copy_states(states: list[Any]) -> list[Any]:
    """States down to their sub-state dicts: what the featurizer changes in place
    (it deletes a user sub-state's intent or text); the values are strings and tuples."""
    return [{key: dict(sub) if isinstance(sub, dict) else sub for key, sub in state.items()}
            for state in states]
