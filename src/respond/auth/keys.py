"""API keys: hashing, generation, masking. A key is never stored, logged or shown again after creation:
only its sha256 digest is kept (in memory and in the `api_keys` table) and a short prefix to recognize it."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-respond-"
SHA256_PREFIX = "sha256:"


def hash_key(key: str) -> str:
    """The sha256 hex digest a key is looked up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def configured_hash(value: str) -> str:
    """A key as the config gives it: plain, or 'sha256:<hex>' (so a config file need not hold the secret)."""
    if value.startswith(SHA256_PREFIX) and len(value) == len(SHA256_PREFIX) + 64:
        return value[len(SHA256_PREFIX):].lower()
    return hash_key(value)


def generate_key() -> str:
    """A new random key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def display_prefix(key: str) -> str:
    """What listings show to recognize a key: its first characters, never enough to use it."""
    return key[: len(KEY_PREFIX) + 4] + "..."


def mask(key: str) -> str:
    """A key as an error message may quote it (as OpenAI does): the start and the last 4 characters only."""
    if len(key) < 16:
        return "*" * min(len(key), 8)
    head = 3 if not key.startswith(KEY_PREFIX) else len(KEY_PREFIX)
    return key[:head] + "*" * 8 + key[-4:]
