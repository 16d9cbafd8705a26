"""The history of a turn: what comes before its input, and recording the turn once it has run.

Where the context comes from:
- `previous_response_id`: the chain of stored responses, assembled by `ResponseStore.chain` (one recursive
  query: each response's own input items and output, oldest first), plus one more query when the chain
  starts at a response that was in a conversation (the conversation's items up to that response's turn).
  A WebSocket connection's unstored (`store: false`) responses are continued from the connection's memory.
- `conversation`: the conversation's items, in order (one query on the item table).

Recording (`record`), in one transaction: the response row (when `store` is on) and, for a response in a
conversation that neither failed nor was cancelled, its input items then its output items appended to the
conversation (even with `store: false`: the conversation keeps its items, the response itself is not kept).
A response row stores only its own input and output, except when its history is not itself stored (the
continuation of an unstored response): then it also stores the full context it was created with, so it stays
continuable after the connection that held the unstored response is gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection

from respond.errors import InvalidRequest, NotFound, shorten
from respond.responses.request import CreateResponseRequest
from respond.storage.conversations_repo import ConversationStore, append_items
from respond.storage.responses_repo import ResponseStore, StoredResponse

CONVERSATION_ID = re.compile(r"conv_[A-Za-z0-9_-]{1,128}")
NOT_APPENDED = ("failed", "cancelled")


class LocalHistory(Protocol):
    items: dict[str, StoredResponse]


@dataclass
class TurnHistory:
    items: list[dict[str, Any]]  # the context before this turn's input
    conversation_id: str | None = None
    stored: bool = True  # False: (part of) `items` exists only in a connection's memory


def conversation_param(req: CreateResponseRequest) -> str | None:
    """The conversation id of a create request (or None); a 400 for a malformed one or one combined with
    `previous_response_id`."""
    value = req.conversation
    if value is None:
        return None
    if req.previous_response_id:
        raise InvalidRequest("Mutually exclusive parameters: Ensure you are only providing one of: "
                             "'previous_response_id' or 'conversation'.", param="conversation",
                             code="mutually_exclusive_parameters")
    if isinstance(value, dict):
        value = value.get("id")
        param = "conversation.id"
    else:
        param = "conversation"
    if not isinstance(value, str):
        raise InvalidRequest(f"Invalid type for '{param}': expected a conversation id string.", param=param,
                             code="invalid_type")
    check_conversation_id(value, param)
    return value


def check_conversation_id(value: str, param: str = "conversation_id") -> None:
    if not CONVERSATION_ID.fullmatch(value):
        raise InvalidRequest(f"Invalid '{param}': '{shorten(value)}'. Expected an ID that begins with 'conv_'.",
                             param=param, code="invalid_value")


def conversation_not_found(conversation_id: str, param: str = "conversation") -> NotFound:
    return NotFound(f"Conversation '{shorten(conversation_id)}' not found.", param=param)


class History:
    def __init__(self, responses: ResponseStore, conversations: ConversationStore) -> None:
        self.responses = responses
        self.conversations = conversations

    async def load(self, owner: str, *, previous_id: str | None, conversation_id: str | None,
                   local: LocalHistory | None, running: dict[str, str]) -> TurnHistory:
        """The context before a turn's input. `running`: ids of the responses running now -> their owner."""
        if conversation_id is not None:
            items = await self.conversations.items(owner, conversation_id)
            if items is None:
                raise conversation_not_found(conversation_id)
            return TurnHistory(items=items, conversation_id=conversation_id)
        if not previous_id:
            return TurnHistory(items=[])
        kept = local.items.get(previous_id) if local is not None else None
        if kept is not None:
            return TurnHistory(items=(kept.context_items or []) + kept.response["output"], stored=False)
        items = await self.chain(owner, previous_id)
        if items is None and running.get(previous_id) == owner:
            raise InvalidRequest(f"Previous response with id '{shorten(previous_id)}' is still in progress; continue it "
                                 "once it has finished.", param="previous_response_id",
                                 code="previous_response_in_progress")
        if items is None:
            raise NotFound(f"Previous response with id '{shorten(previous_id)}' not found.", param="previous_response_id",
                           code="previous_response_not_found")
        return TurnHistory(items=items)

    async def chain(self, owner: str, response_id: str) -> list[dict[str, Any]] | None:
        """The context a continuation of `response_id` starts from: the chain's items and outputs."""
        links = await self.responses.chain(response_id, owner=owner)
        if links is None:
            return None
        first, items = links[0], []
        if first.context_items is not None:
            items = first.context_items + first.output
        elif first.conversation_id is not None and first.conversation_position is not None:
            items = await self.conversations.items(owner, first.conversation_id, up_to=first.conversation_position)
        if not items:
            items = first.input_items + first.output
        for link in links[1:]:
            items += link.input_items
            items += link.output
        return items

    async def record(self, owner: str, response: dict[str, Any], input_items: list[dict[str, Any]],
                     context_items: list[dict[str, Any]], history: TurnHistory) -> None:
        """Store the finished turn (see the module docstring); a no-op when there is nothing to keep."""
        append = history.conversation_id is not None and response["status"] not in NOT_APPENDED
        if not response["store"] and not append:
            return

        def write(conn: Connection) -> None:
            position = None
            if append:
                assert history.conversation_id is not None
                appended = append_items(conn, owner, history.conversation_id, input_items + response["output"],
                                        response["id"])
                position = appended.last_position if appended is not None else None
            if response["store"]:
                row = self.responses.row(owner, response, input_items,
                                         None if history.stored else context_items, position)
                self.responses.save_in(conn, row)

        await self.responses.db.write(write)
