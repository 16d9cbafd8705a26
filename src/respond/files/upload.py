"""Streaming multipart/form-data: the `file` part goes straight into a `BlobWriter` as the bytes arrive
(never whole in memory, never spooled twice), the other parts (small text fields) are collected.

The size limit is enforced while reading: the first byte past it aborts the write and answers 413, so a
too-large upload costs at most `max_bytes` of disk for as long as the request lasts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from respond.errors import APIError, InvalidRequest
from respond.files.blobs import BlobWriter

MAX_FIELD_BYTES = 64 * 1024


class PayloadTooLarge(APIError):
    status_code = 413
    error_type = "invalid_request_error"


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    content_type: str | None = None
    writer: BlobWriter | None = None

    @property
    def size(self) -> int:
        return self.writer.size if self.writer else 0


async def receive_upload(request: Request, new_writer: Callable[[], BlobWriter], max_bytes: int) -> Upload:
    """Parse the request body; the `file` part is written with `new_writer()`. On any failure the writer is
    aborted (no blob is left behind) and the error raised."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest("Expected a multipart/form-data body with a 'file' part.", code="invalid_content_type")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
        raise _too_large(max_bytes)

    upload = Upload()
    events: list[tuple[str, Any]] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    headers: dict[bytes, bytes] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        headers[bytes(header["field"]).lower()] = bytes(header["value"])
        header["field"], header["value"] = bytearray(), bytearray()

    def on_headers_finished() -> None:
        events.append(("part", dict(headers)))
        headers.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(("data", data[start:end]))

    def on_part_end() -> None:
        events.append(("end", None))

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end})

    current: str | None = None  # name of the part being read
    is_file = False
    value = bytearray()
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            for kind, payload in events:
                if kind == "part":
                    _, disposition = parse_options_header(payload.get(b"content-disposition", b""))
                    current = disposition.get(b"name", b"").decode("utf-8", "replace")
                    is_file = current == "file"
                    if is_file:
                        if upload.writer is not None:
                            raise InvalidRequest("Only one 'file' part is allowed.", param="file")
                        raw_name = disposition.get(b"filename")
                        upload.filename = raw_name.decode("utf-8", "replace") if raw_name else None
                        upload.content_type = _media_type(payload.get(b"content-type", b""))
                        upload.writer = new_writer()
                    value = bytearray()
                elif kind == "data":
                    if is_file:
                        assert upload.writer is not None
                        if upload.writer.size + len(payload) > max_bytes:
                            raise _too_large(max_bytes)
                        await upload.writer.write(payload)
                    else:
                        value += payload
                        if len(value) > MAX_FIELD_BYTES:
                            raise InvalidRequest(f"The form field '{current}' is too long.", param=current)
                elif kind == "end":
                    if not is_file and current:
                        upload.fields[current] = value.decode("utf-8", "replace")
                    current, is_file = None, False
            events.clear()
        parser.finalize()
    except MultipartParseError as exc:  # e.g. a part header longer than the parser takes (a huge filename)
        if upload.writer is not None:
            await upload.writer.abort()
        raise InvalidRequest(f"The multipart body cannot be read: {exc}.", code="invalid_multipart") from None
    except BaseException:
        if upload.writer is not None:
            await upload.writer.abort()
        raise
    return upload


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _media_type(raw: bytes) -> str | None:
    """The part's media type (`type/subtype`, parameters dropped) when it is a valid one, else None: it is
    served back as a Content-Type header, which must not carry control characters."""
    media = raw.split(b";", 1)[0].strip().lower()
    kind, slash, sub = media.partition(b"/")
    if not slash or not kind or not sub or not set(kind) <= _TOKEN or not set(sub) <= _TOKEN:
        return None
    return media.decode("ascii")


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is larger than the maximum upload size of {max_bytes} bytes.",
                           param="file", code="file_too_large")
