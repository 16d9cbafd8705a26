"""Input items: from what a client may send to the canonical stored form.

Clients send messages with string or part-list content, easy messages without `type`, function calls and
their outputs, reasoning items, with or without ids. Canonical items always carry `type`, `id` and `status`,
and message content is always a list of typed parts, so everything downstream handles one shape.
"""

from __future__ import annotations

import binascii
from typing import Any

from respond.errors import InvalidRequest
from respond.ids import new_id

MESSAGE_ROLES = ("user", "system", "developer", "assistant")
INPUT_PART_TYPES = ("input_text", "input_image", "input_file", "output_text", "refusal")


def normalize_input(raw: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Turn the `input` parameter into canonical items (each with an id)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [_message("user", [{"type": "input_text", "text": raw}], None, None)]
    if not isinstance(raw, list):
        raise InvalidRequest("'input' must be a string or a list of items.", param="input")
    return [normalize_item(item, f"input[{i}]") for i, item in enumerate(raw)]


MAX_ID_LENGTH = 512


def check_id(value: Any, where: str) -> None:
    """A client-given item id: a non-empty string of at most MAX_ID_LENGTH characters without NUL (ids are
    stored in indexed text columns and echoed as strings)."""
    if not isinstance(value, str):
        raise InvalidRequest(f"Invalid type for '{where}': expected a string.", param=where, code="invalid_type")
    if not value or len(value) > MAX_ID_LENGTH or "\x00" in value:
        raise InvalidRequest(f"Invalid value for '{where}': expected an id of 1 to {MAX_ID_LENGTH} characters.",
                             param=where, code="invalid_value")


def normalize_item(item: Any, where: str) -> dict[str, Any]:
    if isinstance(item, dict) and item.get("id") is not None:
        check_id(item["id"], f"{where}.id")
    if not isinstance(item, dict):
        raise InvalidRequest(f"Invalid value for '{where}': each input item must be an object.", param=where)
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        return _normalize_message(item, where)
    if kind == "function_call":
        _require_str(item, ("call_id", "name", "arguments"), where)
        call = {"type": "function_call", "id": item.get("id") or new_id("function_call"),
                "call_id": item["call_id"], "name": item["name"], "arguments": item["arguments"],
                "status": item.get("status") or "completed"}
        namespace = item.get("namespace")
        if namespace is not None:  # a function of a `namespace` tool
            _require_str(item, ("namespace",), where)
            call["namespace"] = namespace
        return call
    if kind == "function_call_output":
        return normalize_call_output(item, where)
    if kind == "reasoning":
        out = {k: v for k, v in item.items()}
        out.setdefault("id", new_id("reasoning"))
        out.setdefault("summary", [])
        return out
    if kind == "compaction":
        # The output of /v1/responses/compact, accepted back as input: carries the summarized history.
        _require_str(item, ("encrypted_content",), where)
        return {"type": "compaction", "id": item.get("id") or new_id("item"),
                "encrypted_content": item["encrypted_content"]}
    if kind == "item_reference":
        raise InvalidRequest(f"Invalid value for '{where}.type': item_reference is not supported by this server "
                             "yet; send the item itself (e.g. the previous response's output item).",
                             param=f"{where}.type", code="unsupported_value")
    if kind is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.type'.", param=f"{where}.type",
                             code="missing_required_parameter")
    from respond.responses.tools import ITEM_KINDS  # items of tool kinds (mcp_call, file_search_call...)

    tool_item = ITEM_KINDS.get(kind) if isinstance(kind, str) else None
    if tool_item is not None:
        return tool_item.normalize(item, where)
    raise InvalidRequest(f"Invalid value for '{where}.type': '{kind}' is not a supported input item type.",
                         param=f"{where}.type", code="invalid_value")


def normalize_call_output(item: dict[str, Any], where: str) -> dict[str, Any]:
    """A `function_call_output` or `custom_tool_call_output`: `call_id` and `output` (text, or a list of text,
    image and file parts)."""
    _require_str(item, ("call_id",), where)
    output = item.get("output")
    if isinstance(output, list):
        output = [_normalize_output_part(p, f"{where}.output[{i}]") for i, p in enumerate(output)]
    elif not isinstance(output, str):
        raise InvalidRequest(f"Invalid value for '{where}.output': expected a string or a list of content parts.",
                             param=f"{where}.output")
    return {"type": item["type"], "id": item.get("id") or new_id("item"), "call_id": item["call_id"],
            "output": output, "status": item.get("status") or "completed"}


def require_str(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    """Each of `keys` is present and a string (400 naming `where.key` otherwise)."""
    _require_str(obj, keys, where)


def _normalize_message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in MESSAGE_ROLES:
        raise InvalidRequest(f"Invalid value for '{where}.role': expected one of {', '.join(MESSAGE_ROLES)}.",
                             param=f"{where}.role", code="invalid_value")
    content = item.get("content")
    text_type = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        parts = [_text_part(text_type, content)]
    elif isinstance(content, list):
        parts = [_normalize_part(p, f"{where}.content[{i}]", role) for i, p in enumerate(content)]
    else:
        raise InvalidRequest(f"Invalid value for '{where}.content': expected a string or a list of content parts.",
                             param=f"{where}.content")
    return _message(role, parts, item.get("id"), item.get("phase"), item.get("status"))


def _normalize_output_part(part: Any, where: str) -> dict[str, Any]:
    """A part of a function_call_output given as a list: text, image or file (as in message content)."""
    if not isinstance(part, dict) or part.get("type") not in ("input_text", "input_image", "input_file"):
        raise InvalidRequest(f"Invalid value for '{where}.type': expected one of input_text, input_image, "
                             "input_file.", param=f"{where}.type", code="invalid_value")
    return _normalize_part(part, where, "tool")


def _normalize_part(part: Any, where: str, role: str) -> dict[str, Any]:
    if not isinstance(part, dict) or part.get("type") not in INPUT_PART_TYPES:
        raise InvalidRequest(
            f"Invalid value for '{where}.type': expected one of {', '.join(INPUT_PART_TYPES)}.",
            param=f"{where}.type", code="invalid_value")
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        _require_str(part, ("text",), where)
        if kind == "output_text":
            out = _text_part("output_text", part["text"])
            if part.get("annotations"):
                out["annotations"] = part["annotations"]
            return out
        return {"type": "input_text", "text": part["text"]}
    if kind == "refusal":
        _require_str(part, ("refusal",), where)
        return {"type": "refusal", "refusal": part["refusal"]}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) and not part.get("file_id"):
            raise InvalidRequest(f"Missing required parameter: '{where}.image_url'.", param=f"{where}.image_url",
                                 code="missing_required_parameter")
        if isinstance(url, str) and not url.startswith(("http://", "https://", "data:")):
            raise InvalidRequest(f"Invalid value for '{where}.image_url': expected an http(s) URL or a data URL.",
                                 param=f"{where}.image_url", code="invalid_image_url")
        if isinstance(url, str) and url.startswith("data:"):
            _check_image_data_url(url, f"{where}.image_url")
        return {"type": "input_image", "image_url": url, "file_id": part.get("file_id"),
                "detail": part.get("detail") or "auto"}
    # input_file
    if not any(part.get(k) for k in ("file_data", "file_id", "file_url")):
        raise InvalidRequest(f"'{where}' needs one of file_data, file_id or file_url.", param=where)
    return {k: v for k, v in part.items() if v is not None}


def _check_image_data_url(url: str, param: str) -> None:
    """A `data:` image URL must be `data:image/<type>;base64,<valid base64>`: rejected here (400, OpenAI's
    codes) rather than by the upstream after the request was sent."""
    header, comma, data = url.partition(",")
    if not comma or not header.endswith(";base64") or not header[len("data:"):].startswith("image/"):
        raise InvalidRequest(f"Invalid value for '{param}': expected a base64 data URL "
                             "(data:image/<type>;base64,<data>).", param=param, code="invalid_image_url")
    try:
        binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"Invalid 'image_url' at '{param}': the data URL's image data is not valid base64.",
                             param=param, code="invalid_base64_image") from None
    if not data:
        raise InvalidRequest(f"Invalid 'image_url' at '{param}': the image is empty.", param=param,
                             code="empty_image_file")


def output_text_part(text: str = "", logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An `output_text` content part: always with its `annotations` and `logprobs` arrays."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def _text_part(kind: str, text: str) -> dict[str, Any]:
    return output_text_part(text) if kind == "output_text" else {"type": kind, "text": text}


def _message(role: str, parts: list[dict[str, Any]], item_id: str | None, phase: str | None,
             status: str | None = None) -> dict[str, Any]:
    msg = {"type": "message", "id": item_id or new_id("message"), "role": role, "status": status or "completed",
           "content": parts}
    if phase is not None:
        msg["phase"] = phase
    return msg


def _require_str(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in obj or obj[key] is None:
            raise InvalidRequest(f"Missing required parameter: '{where}.{key}'.", param=f"{where}.{key}",
                                 code="missing_required_parameter")
        if not isinstance(obj[key], str):
            raise InvalidRequest(f"Invalid type for '{where}.{key}': expected a string.", param=f"{where}.{key}",
                                 code="invalid_type")
