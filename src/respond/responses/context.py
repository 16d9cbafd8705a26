"""From Responses items and parameters to one chat-completions request.

This is the only module that knows how Responses concepts map onto Chat Completions: messages and their
parts, function calls and outputs, compaction summaries, tools, tool_choice, text.format and sampling.
Parameters the client did not set are left out of the upstream request, so the upstream's own defaults
apply and recordings stay small and stable.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from respond.errors import InvalidRequest
from respond.responses.request import CreateResponseRequest

COMPACTION_PREFIX = "respond-compaction-v1:"


def encode_compaction(summary: str) -> str:
    return COMPACTION_PREFIX + base64.b64encode(summary.encode()).decode()


def decode_compaction(blob: str) -> str:
    if not blob.startswith(COMPACTION_PREFIX):
        raise InvalidRequest("This compaction item was not produced by this server.", param="input",
                             code="invalid_encrypted_content")
    try:
        return base64.b64decode(blob[len(COMPACTION_PREFIX):], validate=True).decode()
    except ValueError:
        raise InvalidRequest("The compaction item's encrypted_content is corrupt.", param="input",
                             code="invalid_encrypted_content") from None


def _place_tool_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put every tool result right after the assistant message that made its call, as Chat Completions
    requires (`assistant(tool_calls), tool, tool, ...`), whatever order the input items came in.

    Messages that fell between a call and its result (a user message sent along with the outputs) follow
    the tool results. Images and files in a tool result travel in a `user` message after the turn's tool
    messages (a `tool` message may carry text only); the tool message keeps the text, or a note.
    """
    tools = [i for i, m in enumerate(messages) if m["role"] == "tool"]
    if not tools:
        return messages
    by_call = {messages[i]["tool_call_id"]: i for i in tools}
    placed: set[int] = set()
    for m in messages:
        if m["role"] == "assistant":
            for call in m.get("tool_calls") or ():
                index = by_call.get(call["id"])
                if index is not None:
                    placed.add(index)
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if i in placed:
            continue  # it goes right after its call
        if m["role"] == "tool":  # a result without a call (validated away elsewhere): stays where it was
            _add_tool_results(out, [m])
            continue
        out.append(m)
        if m["role"] == "assistant" and m.get("tool_calls"):
            _add_tool_results(out, [messages[by_call[c["id"]]] for c in m["tool_calls"] if c["id"] in by_call])
    return out


def _add_tool_results(out: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
    """Append one turn's tool messages (text only), then one user message with their images and files."""
    attachments: list[dict[str, Any]] = []
    for message in results:
        out.append(_split_tool_message(message, attachments))
    if attachments:
        out.append({"role": "user", "content": attachments})


def _split_tool_message(message: dict[str, Any], attachments: list[dict[str, Any]]) -> dict[str, Any]:
    """The tool message with its text only; its images and files go to `attachments` (labelled by call)."""
    content = message["content"]
    if isinstance(content, str) or all(p["type"] == "text" for p in content):
        return message
    text = [p for p in content if p["type"] == "text"]
    media = [p for p in content if p["type"] != "text"]
    kinds = {"image" if p["type"] == "image_url" else "file" for p in media}
    noun = "image" if kinds == {"image"} else "file" if kinds == {"file"} else "attachment"
    if not text:
        text = [{"type": "text", "text": f"(see the {noun}{'s' if len(media) > 1 else ''} below)"}]
    attachments.append({"type": "text", "text": f"The output of tool call {message['tool_call_id']} includes:"})
    attachments.extend(media)
    return {**message, "content": text}


def items_to_messages(items: list[dict[str, Any]], instructions: str | None,
                      reasoning: bool = False) -> list[dict[str, Any]]:
    """Chat messages for a list of canonical items, with `instructions` as the leading system message;
    tool results placed as Chat Completions requires (`_place_tool_results`). `reasoning`: reasoning items
    travel as `reasoning_content` on the assistant message that follows them (else they are not sent)."""
    return _place_tool_results(_item_messages(items, instructions, reasoning))


def _item_messages(items: list[dict[str, Any]], instructions: str | None,
                   reasoning: bool = False) -> list[dict[str, Any]]:
    """One chat message per item, in item order."""
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    thought: str | None = None  # reasoning waiting for the assistant message it preceded
    for item in items:
        if item["type"] == "reasoning":
            text = reasoning_text(item) if reasoning else ""
            if text:
                thought = text if thought is None else f"{thought}\n{text}"
            continue  # not replayed to chat-completions backends unless the provider takes it
        before = len(messages)
        _item_to_messages(item, messages)
        if thought is not None:
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and (len(messages) > before or "tool_calls" in last):
                last.setdefault("reasoning_content", thought)
            thought = None  # attached, or not followed by the model's own turn
    return messages


def reasoning_text(item: dict[str, Any]) -> str:
    """A reasoning item's text: its reasoning_text content, else its summary."""
    parts = item.get("content") or item.get("summary") or []
    return "".join(p.get("text") or "" for p in parts if isinstance(p, dict))


def _item_to_messages(item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    kind = item["type"]
    if kind == "message":
        messages.append(_message_to_chat(item))
    elif kind == "function_call":
        add_tool_call(messages, item["call_id"], chat_function_name(item.get("namespace"), item["name"]),
                      item["arguments"])
    elif kind == "function_call_output":
        add_tool_output(messages, item)
    elif kind == "compaction":
        summary = decode_compaction(item["encrypted_content"])
        messages.append({"role": "system", "content": f"Summary of the earlier conversation:\n{summary}"})
    else:
        _tool_item_to_messages(item, messages)


def add_tool_call(messages: list[dict[str, Any]], call_id: str, name: str, arguments: str) -> None:
    """Append one tool call to the history: joins the assistant message right before it (its text, or its
    other calls of the same turn), else starts an assistant message."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and "tool_calls" in last:
        last["tool_calls"].append(call)
    elif last is not None and last["role"] == "assistant" and "tool_calls" not in last \
            and isinstance(last.get("content"), str):
        last["tool_calls"] = [call]
    else:
        # "" rather than null: OpenAI takes both, llama.cpp's server and chat templates only a string
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})


def add_tool_output(messages: list[dict[str, Any]], item: dict[str, Any]) -> None:
    """Append a call's output (`function_call_output`, `custom_tool_call_output`) as a `tool` message."""
    output = item["output"]
    messages.append({"role": "tool", "tool_call_id": item["call_id"],
                     "content": output if isinstance(output, str) else _parts_to_chat(output)})


def chat_function_name(namespace: str | None, name: str) -> str:
    """The chat function name of a tool: its own name, or `<namespace>__<name>` for a function of a
    `namespace` tool (so the functions of two namespaces never clash). tools/namespace.py offers them so."""
    if not namespace:
        return name
    return _NOT_NAME.sub("_", f"{namespace}__{name}")[:64]


_NOT_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def _tool_item_to_messages(item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    """Items owned by a tool module (mcp_call, file_search_call...): the module says what the model sees."""
    from respond.responses.tools import ITEM_KINDS

    kind = ITEM_KINDS.get(item["type"])
    if kind is None:  # never silently dropped on the way to the upstream
        raise InvalidRequest(f"Items of type '{item['type']}' are not supported by this server.", param="input",
                             code="invalid_value")
    kind.to_messages(item, messages)


def _message_to_chat(item: dict[str, Any]) -> dict[str, Any]:
    role = item["role"]
    if role == "developer":
        role = "system"
    parts = item["content"]
    if role == "assistant":
        text = "".join(p.get("text") or p.get("refusal") or "" for p in parts)
        return {"role": "assistant", "content": text}
    if all(p["type"] == "input_text" for p in parts):
        return {"role": role, "content": "".join(p["text"] for p in parts) if len(parts) == 1
                else [{"type": "text", "text": p["text"]} for p in parts]}
    return {"role": role, "content": _parts_to_chat(parts)}


def _parts_to_chat(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            out.append({"type": "text", "text": part["text"]})
        elif kind == "refusal":
            out.append({"type": "text", "text": part["refusal"]})
        elif kind == "input_image":
            if not part.get("image_url"):
                raise InvalidRequest("input_image with a file_id is not supported by this server yet (uploaded "
                                     "files reach the model as text through input_file); send image_url (an http "
                                     "URL or a data URL) instead.", param="input", code="invalid_image")
            out.append({"type": "image_url", "image_url": {"url": part["image_url"],
                                                           "detail": part.get("detail") or "auto"}})
        elif kind == "input_file":
            file: dict[str, Any] = {}
            if part.get("file_data"):
                file["file_data"] = part["file_data"]
            if part.get("file_id"):
                file["file_id"] = part["file_id"]
            if part.get("filename"):
                file["filename"] = part["filename"]
            if part.get("file_url") and not file:
                out.append({"type": "text", "text": f"[file: {part['file_url']}]"})
                continue
            out.append({"type": "file", "file": file})
    return out


def echo_tool_choice(choice: Any) -> Any:
    return "auto" if choice is None else choice


def response_format(req: CreateResponseRequest) -> dict[str, Any] | None:
    fmt = req.text.format if req.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    if not fmt.name:
        raise InvalidRequest("Missing required parameter: 'text.format.name'.", param="text.format.name",
                             code="missing_required_parameter")
    if fmt.schema_ is None:
        raise InvalidRequest("Missing required parameter: 'text.format.schema'.", param="text.format.schema",
                             code="missing_required_parameter")
    schema: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema_}
    if fmt.description is not None:
        schema["description"] = fmt.description
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": schema}


def echo_text(req: CreateResponseRequest) -> dict[str, Any]:
    fmt = req.text.format if req.text else None
    if fmt is None or fmt.type == "text":
        out_fmt: dict[str, Any] = {"type": "text"}
    elif fmt.type == "json_object":
        out_fmt = {"type": "json_object"}
    else:
        out_fmt = {"type": "json_schema", "name": fmt.name, "schema": fmt.schema_,
                   "description": fmt.description, "strict": fmt.strict}
    return {"format": out_fmt, "verbosity": (req.text.verbosity if req.text and req.text.verbosity else "medium")}


def chat_request(req: CreateResponseRequest, upstream_model: str, messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]], tool_choice: Any, response_format: dict[str, Any] | None = None,
                 max_tokens_field: str = "max_tokens") -> dict[str, Any]:
    """The streamed chat-completions body for one model turn.

    `tools` are chat-completions tool definitions (`ToolSet.chat_tools()`), `tool_choice` the chat form
    (`ToolSet.chat_tool_choice()`, None: omitted).
    `response_format` is `response_format(req)`, computed once per response.
    `max_tokens_field` is how the provider names the output limit: `max_tokens` (most OpenAI-compatible
    servers) or `max_completion_tokens` (OpenAI's own API, required by its reasoning models).
    """
    body: dict[str, Any] = {"model": upstream_model, "messages": messages, "stream": True,
                            "stream_options": {"include_usage": True}}
    if tools:
        body["tools"] = tools
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "user",
                 "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier"):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if req.max_output_tokens is not None:
        body[max_tokens_field] = req.max_output_tokens
    if response_format is not None:
        body["response_format"] = response_format
    if req.text is not None and req.text.verbosity is not None:
        body["verbosity"] = req.text.verbosity
    if req.reasoning is not None and req.reasoning.effort is not None:
        body["reasoning_effort"] = req.reasoning.effort
    if req.top_logprobs or (req.include and "message.output_text.logprobs" in req.include):
        body["logprobs"] = True
        if req.top_logprobs:
            body["top_logprobs"] = req.top_logprobs
    return body


