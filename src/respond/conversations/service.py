"""The Conversations service: create, retrieve, update, delete conversations; add, list, get, delete items.

Objects have the shapes of the `openai` package's `types.conversations`: `Conversation`
(`{id, object: "conversation", created_at, metadata}`), `ConversationDeletedResource`, `ConversationItem`
and `ConversationItemList`. Items are validated and put in canonical form by `respond.responses.items` (the
same code that reads a response's `input`), plus the server-tool item types that tools produce.
"""

from __future__ import annotations

import time
from typing import Any

from respond.errors import InvalidRequest, not_found
from respond.ids import new_id
from respond.responses.history import check_conversation_id, conversation_not_found
from respond.responses.items import normalize_item
from respond.storage.conversations_repo import ConversationStore

MAX_ITEMS_PER_CALL = 20
METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512

INCLUDABLE = ("code_interpreter_call.outputs", "computer_call_output.output.image_url",
              "file_search_call.results", "message.input_image.image_url", "message.output_text.logprobs",
              "reasoning.encrypted_content", "web_search_call.action.sources", "web_search_call.results")

# Items tools produce (and clients may add). A tool kind that registers its item type (`item_kind`, e.g. MCP)
# validates it; the others are stored as given, with an id.
SERVER_TOOL_ITEMS = {
    "file_search_call": "fs", "web_search_call": "ws", "mcp_list_tools": "mcpl", "mcp_call": "mcp",
    "mcp_approval_request": "mcpr", "mcp_approval_response": "mcpa", "image_generation_call": "ig",
    "code_interpreter_call": "ci", "computer_call": "cu", "computer_call_output": "cuo",
    "local_shell_call": "lsh", "local_shell_call_output": "lsho", "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
}


def check_metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """OpenAI's metadata rules: at most 16 string pairs, keys up to 64 characters, values up to 512."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid type for '{param}': expected an object of string keys and values.",
                             param=param, code="invalid_type")
    if len(value) > METADATA_MAX_PAIRS:
        raise InvalidRequest(f"Invalid '{param}': too many keys, expected at most {METADATA_MAX_PAIRS} "
                             f"but got {len(value)}.", param=param, code="invalid_value")
    for key, item in value.items():
        if len(key) > METADATA_MAX_KEY:
            raise InvalidRequest(f"Invalid '{param}': key '{key[:20]}...' is {len(key)} characters long, "
                                 f"expected at most {METADATA_MAX_KEY}.", param=param, code="invalid_value")
        if not isinstance(item, str):
            raise InvalidRequest(f"Invalid type for '{param}.{key}': expected a string.", param=f"{param}.{key}",
                                 code="invalid_type")
        if len(item) > METADATA_MAX_VALUE:
            raise InvalidRequest(f"Invalid '{param}.{key}': the value is {len(item)} characters long, expected "
                                 f"at most {METADATA_MAX_VALUE}.", param=f"{param}.{key}", code="invalid_value")
    return value


def check_include(include: list[str] | None) -> None:
    for value in include or ():
        if value not in INCLUDABLE:
            raise InvalidRequest(f"Invalid value for 'include': '{value}'. Supported values are: "
                                 f"{', '.join(INCLUDABLE)}.", param="include", code="invalid_value")


def normalize_items(raw: Any) -> list[dict[str, Any]]:
    """The `items` of a create call: a list of 0-20 input items, in canonical stored form."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidRequest("Invalid type for 'items': expected an array of items.", param="items",
                             code="invalid_type")
    if len(raw) > MAX_ITEMS_PER_CALL:
        raise InvalidRequest(f"Invalid 'items': array too long. Expected an array with maximum length "
                             f"{MAX_ITEMS_PER_CALL}, but got an array with length {len(raw)} instead.",
                             param="items", code="array_above_max_length")
    return [_normalize(item, f"items[{k}]") for k, item in enumerate(raw)]


def _normalize(item: Any, where: str) -> dict[str, Any]:
    from respond.responses.tools import ITEM_KINDS  # tool kinds that define their canonical items

    kind = item.get("type") if isinstance(item, dict) else None
    if kind in SERVER_TOOL_ITEMS and kind not in ITEM_KINDS:
        out = dict(item)
        if not isinstance(out.get("id"), str) or not out["id"]:
            out["id"] = f"{SERVER_TOOL_ITEMS[kind]}_{new_id('item')[5:]}"
        return out
    return normalize_item(item, where)


class ConversationService:
    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    async def create(self, *, owner: str, metadata: Any, items: Any) -> dict[str, Any]:
        conversation = {"id": new_id("conversation"), "object": "conversation", "created_at": int(time.time()),
                        "metadata": check_metadata(metadata)}
        await self.store.create(owner, conversation, normalize_items(items))
        return conversation

    async def get(self, conversation_id: str, *, owner: str) -> dict[str, Any]:
        check_conversation_id(conversation_id)
        conversation = await self.store.get(owner, conversation_id)
        if conversation is None:
            raise conversation_not_found(conversation_id, "conversation_id")
        return conversation

    async def update(self, conversation_id: str, *, owner: str, metadata: Any) -> dict[str, Any]:
        check_conversation_id(conversation_id)
        if metadata is None:
            raise InvalidRequest("Missing required parameter: 'metadata'.", param="metadata",
                                 code="missing_required_parameter")
        conversation = await self.store.update_metadata(owner, conversation_id, check_metadata(metadata))
        if conversation is None:
            raise conversation_not_found(conversation_id, "conversation_id")
        return conversation

    async def delete(self, conversation_id: str, *, owner: str) -> dict[str, Any]:
        check_conversation_id(conversation_id)
        if not await self.store.delete(owner, conversation_id):
            raise conversation_not_found(conversation_id, "conversation_id")
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def add_items(self, conversation_id: str, *, owner: str, items: Any,
                        include: list[str] | None) -> dict[str, Any]:
        check_conversation_id(conversation_id)
        check_include(include)
        if items is None:
            raise InvalidRequest("Missing required parameter: 'items'.", param="items",
                                 code="missing_required_parameter")
        normalized = normalize_items(items)
        if await self.store.append(owner, conversation_id, normalized) is None:
            raise conversation_not_found(conversation_id, "conversation_id")
        return {"object": "list", "data": normalized, "first_id": normalized[0]["id"] if normalized else None,
                "last_id": normalized[-1]["id"] if normalized else None, "has_more": False}

    async def list_items(self, conversation_id: str, *, owner: str, after: str | None, limit: int, order: str,
                         include: list[str] | None) -> dict[str, Any]:
        check_conversation_id(conversation_id)
        check_include(include)
        page = await self.store.list_items(owner, conversation_id, after=after, limit=limit, order=order)
        if page is None:
            raise conversation_not_found(conversation_id, "conversation_id")
        return page.to_dict()

    async def get_item(self, conversation_id: str, item_id: str, *, owner: str,
                       include: list[str] | None) -> dict[str, Any]:
        check_conversation_id(conversation_id)
        check_include(include)
        item = await self.store.get_item(owner, conversation_id, item_id)
        if item is None:
            await self.get(conversation_id, owner=owner)  # 404 for the conversation first
            raise not_found("Item", item_id, param="item_id")
        return item

    async def delete_item(self, conversation_id: str, item_id: str, *, owner: str) -> dict[str, Any]:
        """Delete one item; returns the conversation, as OpenAI does."""
        conversation = await self.get(conversation_id, owner=owner)
        if not await self.store.delete_item(owner, conversation_id, item_id):
            raise not_found("Item", item_id, param="item_id")
        return conversation
