"""Workflow histories as tests read them."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from temporalio.client import WorkflowHistory


def history_text(history: WorkflowHistory) -> str:
    """The history as JSON, and every base64 text in it decoded (payloads are base64 there)."""
    text = history.to_json()
    decoded: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            try:
                decoded.append(base64.b64decode(value, validate=True).decode("utf-8", errors="replace"))
            except (binascii.Error, ValueError):
                pass

    walk(json.loads(text))
    return "\n".join([text, *decoded])
