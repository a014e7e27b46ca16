"""The result line of a program that prints other lines too: the last one that is a JSON object
(the server's final counters, a load generator's result)."""

from __future__ import annotations

import json
from collections.abc import Callable


def last_json_object(text: str, accept: Callable[[dict], bool] = lambda obj: True) -> dict | None:
    """The last line of `text` that is a JSON object `accept` takes, or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and accept(obj):
            return obj
    return None
