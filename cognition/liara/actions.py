"""A crisis from the command line's action words: ``liara trigger target-alpha recon secure``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import ACTION_PATTERN, MAX_ACTION_LENGTH

#: Short action words the CLI accepts, and the action each stands for.
ACTION_ALIASES = {"recon": "reconnaissance"}


def missions_from_actions(target_member: str, actions: Iterable[str], first_position: int = 1) -> list[dict[str, Any]]:
    """One phase per action word, in order: ``recon`` becomes phase ``recon-phase-1`` run by
    agent ``recon-agent-001`` with action ``reconnaissance``; a repeated word gets the next agent.
    ``first_position`` numbers phases appended to a running crisis after its existing ones.
    """
    missions = []
    per_word: dict[str, int] = {}
    for position, word in enumerate(actions, start=first_position):
        if len(word) > MAX_ACTION_LENGTH or not re.fullmatch(ACTION_PATTERN, word):
            raise InvalidCrisisRequestError(
                f"Action {word!r} is not a word: use up to {MAX_ACTION_LENGTH} letters, digits, '_' and '-', "
                "starting with a letter."
            )
        per_word[word] = per_word.get(word, 0) + 1
        missions.append(
            {
                "phase_id": f"{word}-phase-{position}",
                "agent_id": f"{word}-agent-{per_word[word]:03d}",
                "action": ACTION_ALIASES.get(word, word),
                "target": target_member,
                "priority": position,
            }
        )
    return missions
