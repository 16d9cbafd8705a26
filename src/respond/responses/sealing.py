"""Reasoning that survives `store: false`: `encrypted_content` sealed with a server key.

A client that stores nothing (Codex CLI: `store: false`, `include: ["reasoning.encrypted_content"]`) sends
the previous turn's output items back as input. Their reasoning text must come back intact and must not be
something the client made up, so each reasoning item carries `encrypted_content`: its `content` and
`summary`, encrypted and authenticated with AES-256-GCM under the server's key (a random 96-bit nonce per
item). Returned as input, the blob is opened again; a changed, truncated or foreign blob (another server's,
OpenAI's) is a 400 `invalid_encrypted_content` naming the input item.

The key: `reasoning_key` in the config (32 random bytes in urlsafe base64, e.g.
`python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`), or else one
generated at first start and kept in `<data_dir>/reasoning.key` (mode 0600). It is never logged or sent
anywhere. Servers behind one load balancer must share it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from respond.errors import InvalidRequest

PREFIX = "respond-rs1:"  # the format version; a blob without it was not made by Respond
_AAD = b"respond reasoning v1"
_NONCE = 12
KEY_FILE = "reasoning.key"


class ReasoningSealer:
    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the reasoning key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_config(cls, reasoning_key: str | None, data_dir: Path) -> ReasoningSealer:
        """The configured key, or the one under `data_dir` (created on first use)."""
        if reasoning_key:
            return cls(decode_key(reasoning_key))
        path = data_dir / KEY_FILE
        if not path.exists():
            # written whole to a private temp file, then linked into place: processes starting together on an
            # empty data dir (`respond serve --workers N`) all end up reading the one key that won
            data_dir.mkdir(parents=True, exist_ok=True)
            tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return cls(decode_key(path.read_text().strip()))

    def seal(self, item: dict[str, Any]) -> str:
        """The `encrypted_content` of a reasoning item: its content and summary."""
        payload = orjson.dumps({"content": item.get("content") or [], "summary": item.get("summary") or []})
        nonce = os.urandom(_NONCE)
        return PREFIX + base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, payload, _AAD)).decode()

    def open(self, blob: Any, param: str) -> dict[str, Any]:
        """What `seal` sealed; InvalidRequest (param: the input item's field) when it is not ours or was
        changed."""
        if not isinstance(blob, str) or not blob.startswith(PREFIX):
            raise _invalid("was not produced by this server", param)
        try:
            raw = base64.urlsafe_b64decode(blob[len(PREFIX):].encode())
            payload = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD)
            value = orjson.loads(payload)
        except (binascii.Error, ValueError, InvalidTag):
            raise _invalid("is corrupt, was changed, or was sealed with another key", param) from None
        if not isinstance(value, dict):
            raise _invalid("is corrupt", param)
        return value


    def seal_value(self, value: Any, purpose: bytes) -> str:
        """Any JSON value sealed with the server key; `purpose` (authenticated, not stored) keeps blobs made for
        one use from being opened as another (e.g. queued credentials vs reasoning)."""
        nonce = os.urandom(_NONCE)
        return PREFIX + base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, orjson.dumps(value),
                                                                             purpose)).decode()

    def open_value(self, blob: str, purpose: bytes) -> Any:
        """What `seal_value` sealed for `purpose`; ValueError when it is not ours, was changed or is for
        another purpose."""
        try:
            raw = base64.urlsafe_b64decode(blob[len(PREFIX):].encode())
            return orjson.loads(self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], purpose))
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise ValueError("sealed value is corrupt or was sealed with another key") from exc


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.encode())
    except (binascii.Error, ValueError):
        raise ValueError("reasoning_key must be 32 bytes in urlsafe base64") from None
    if len(key) != 32:
        raise ValueError("reasoning_key must be 32 bytes in urlsafe base64")
    return key


def _invalid(what: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"The encrypted content of the reasoning item at '{param}' {what}: send back reasoning "
                          "items exactly as this server returned them.", param=param,
                          code="invalid_encrypted_content")


def open_reasoning(sealer: ReasoningSealer, items: list[dict[str, Any]], where: str = "input") -> None:
    """Restore the content of every reasoning item that carries `encrypted_content` (in place). `items` are
    the request's input items, in input order (item i is `input[i]`)."""
    for i, item in enumerate(items):
        if item["type"] != "reasoning" or item.get("encrypted_content") is None:
            continue
        sealed = sealer.open(item["encrypted_content"], f"{where}[{i}].encrypted_content")
        # the sealed text wins over what the client sent along: it is what the model produced
        if isinstance(sealed.get("content"), list):
            item["content"] = sealed["content"]
        if isinstance(sealed.get("summary"), list):
            item["summary"] = sealed["summary"]
