"""The registry: request tool `type` strings and item `type` strings -> the tool module that owns them.

Tool modules register themselves when the package is imported (every module of `respond.responses.tools`
is imported by `tools/__init__.py`), so adding a tool kind is adding a module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from respond.responses.tools.base import Tool

T = TypeVar("T", bound=type[Tool])

TOOL_KINDS: dict[str, type[Tool]] = {}
ITEM_KINDS: dict[str, ItemKind] = {}


@dataclass(frozen=True)
class ItemKind:
    """How items of one `type` owned by a tool module travel:

    - `normalize(item, where)`: a client-sent input item (e.g. an `mcp_call` a store=false client sends
      back) -> its canonical stored form, or InvalidRequest naming `where` (e.g. "input[3].name");
    - `to_messages(item, messages)`: append what the item means to the model, as chat messages, to
      `messages` (the history so far; may be [] for items the model never sees, like `mcp_list_tools`).
    """

    normalize: Callable[[dict[str, Any], str], dict[str, Any]]
    to_messages: Callable[[dict[str, Any], list[dict[str, Any]]], None]


def tool_kind(*types: str) -> Callable[[T], T]:
    """Class decorator: `@tool_kind("web_search", "web_search_preview")`."""
    def register(cls: T) -> T:
        for t in types:
            if t in TOOL_KINDS and TOOL_KINDS[t] is not cls:
                raise RuntimeError(f"tool type {t!r} registered twice")
            TOOL_KINDS[t] = cls
        return cls
    return register


def item_kind(item_type: str, normalize: Callable[[dict[str, Any], str], dict[str, Any]],
              to_messages: Callable[[dict[str, Any], list[dict[str, Any]]], None]) -> None:
    if item_type in ITEM_KINDS:
        raise RuntimeError(f"item type {item_type!r} registered twice")
    ITEM_KINDS[item_type] = ItemKind(normalize, to_messages)


def supported_tool_types() -> list[str]:
    return sorted(TOOL_KINDS)
