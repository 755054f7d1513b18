"""RulePolicy's rule lookup narrowed by the current turn's previous action, built once.

Every policy prediction asks ``RulePolicy._get_possible_keys`` which learned rules
fit the conversation: Rasa walks *all* rule keys (~150 here, JSON strings) back
through the session's turns, and the first turn alone already rules out nearly all
of them, because a rule's last state names the action it follows and the
conversation's last state names the action that just ran. Profiled under load that
walk was about an eighth of a Rasa server's CPU.

Here the keys are grouped once per lookup table by their last state's
``prev_action`` and user intent (a rule and a conversation state match only when
each item the rule names is in the conversation's state); Rasa's own filter then
runs over the groups that fit plus the keys the grouping cannot judge (a rule that
starts a conversation, or a value that is not a plain string). The result is the set Rasa
computes: a key left out is one Rasa's first step rejects.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable
from typing import Any

from rasa.core.policies.rule_policy import SHOULD_NOT_BE_SET
from rasa.shared.core.constants import PREVIOUS_ACTION, USER
from rasa.shared.nlu.constants import INTENT

#: (the lookup table the index was built from, its keys, the index); one per table
_IndexEntry = tuple[dict[str, Any], frozenset[str], "RuleIndex"]


class RuleIndex:
    """Rule keys by what their last state requires: the ``prev_action`` items and the
    user's intent (``None``: the rule names no intent, any fits)."""

    def __init__(self, keys: list[str]) -> None:
        self.indexed: dict[tuple[frozenset[tuple[str, str]], str | None], list[str]] = {}
        #: keys the grouping cannot judge: always handed to Rasa's filter
        self.unindexed: list[str] = []
        for key in keys:
            states = json.loads(key)
            last = states[-1] if states else {}
            previous = last.get(PREVIOUS_ACTION)
            intent = last.get(USER, {}).get(INTENT)
            if (isinstance(previous, dict) and previous
                    and all(_plain(value) for value in previous.values())
                    and (intent is None or _plain(intent))):
                self.indexed.setdefault((frozenset(previous.items()), intent), []).append(key)
            else:
                self.unindexed.append(key)

    def candidates(self, current: dict[str, Any]) -> set[str]:
        """Keys that can fit a conversation whose last state is ``current``."""
        found = set(self.unindexed)
        previous = current.get(PREVIOUS_ACTION)
        if not previous:  # a conversation start: only rules without prev_action fit
            return found
        intent = current.get(USER, {}).get(INTENT)
        intents = (None, intent) if isinstance(intent, str) else (None,)
        items = [item for item in previous.items() if isinstance(item[1], str)]
        for size in range(1, len(items) + 1):
            for subset in itertools.combinations(items, size):
                for wanted in intents:
                    found.update(self.indexed.get((frozenset(subset), wanted), ()))
        return found


def _plain(value: Any) -> bool:
    """A value a rule requires as is (not a list, not "must not be set")."""
    return isinstance(value, str) and value != SHOULD_NOT_BE_SET


def wrap_get_possible_keys(original: Callable[..., set[str]]) -> Callable[..., set[str]]:
    """``RulePolicy._get_possible_keys`` over the indexed candidates instead of every key."""
    indexes: dict[int, _IndexEntry] = {}

    def index_for(lookup: dict[str, Any]) -> RuleIndex:
        entry = indexes.get(id(lookup))
        if entry is None or entry[0] is not lookup or entry[1] != lookup.keys():
            # a new table, or one changed since (training adds rules one by one)
            entry = (lookup, frozenset(lookup), RuleIndex(list(lookup)))
            indexes[id(lookup)] = entry
        return entry[2]

    @functools.wraps(original)
    def _get_possible_keys(self: Any, lookup: dict[str, Any],
                           states: list[dict[str, Any]]) -> set[str]:
        if not states:
            return set(lookup.keys())
        possible = index_for(lookup).candidates(states[-1])
        for turn, state in enumerate(reversed(states)):
            possible = {key for key in possible if self._is_rule_applicable(key, turn, state)}
        return possible

    _get_possible_keys._citizenbot_hook = True  # type: ignore[attr-defined]
    return _get_possible_keys
