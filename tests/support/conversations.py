"""Validators for the Conversations API's objects against the `openai` package's `types.conversations`."""

from __future__ import annotations

import functools
from typing import Any

from openai.types.conversations import (
    Conversation,
    ConversationDeletedResource,
    ConversationItem,
    ConversationItemList,
)
from pydantic import TypeAdapter


@functools.cache
def _item_adapter() -> TypeAdapter:
    return TypeAdapter(ConversationItem)


def validate_conversation(obj: dict[str, Any]) -> Conversation:
    assert set(obj) == {"id", "object", "created_at", "metadata"}, obj
    assert obj["object"] == "conversation" and obj["id"].startswith("conv_") and len(obj["id"]) == 5 + 48
    assert all(c in "0123456789abcdef" for c in obj["id"][5:])
    return Conversation.model_validate(obj, strict=True)


def validate_conversation_deleted(obj: dict[str, Any]) -> ConversationDeletedResource:
    assert obj["object"] == "conversation.deleted" and obj["deleted"] is True
    return ConversationDeletedResource.model_validate(obj, strict=True)


def validate_conversation_item(item: dict[str, Any]) -> Any:
    assert isinstance(item.get("id"), str) and item["id"], item
    parsed = _item_adapter().validate_python(item, strict=True)
    assert parsed.type == item["type"]
    return parsed


def validate_conversation_item_list(obj: dict[str, Any]) -> ConversationItemList:
    assert set(obj) == {"object", "data", "first_id", "last_id", "has_more"}, obj
    for item in obj["data"]:
        validate_conversation_item(item)
    ids = [item["id"] for item in obj["data"]]
    assert (obj["first_id"], obj["last_id"]) == ((ids[0], ids[-1]) if ids else (None, None))
    assert isinstance(obj["has_more"], bool)
    return ConversationItemList.model_validate(obj, strict=True)
