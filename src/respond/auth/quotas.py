"""Optional per-key quotas: requests per minute (RPM) and tokens per minute (TPM), as token buckets.

A key with `requests_per_minute: N` holds a bucket of N requests refilled continuously (N per 60 s): each
request takes one, an empty bucket is a 429 `rate_limit_exceeded` with `Retry-After` (whole seconds until
one request is back). `tokens_per_minute: T` is a bucket of T tokens: a request is admitted while the bucket
is not in debt, and when a response finishes its `usage.total_tokens` are taken out (the count is only known
afterwards, so one large response can overdraw it; the next requests wait until it is paid back).
Counted per process (several server processes each allow the full rate); buckets live in memory.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from respond.errors import APIError


class RateLimited(APIError):
    status_code = 429

    def __init__(self, message: str, *, kind: str, retry_after: float, limit: int) -> None:
        super().__init__(message, code="rate_limit_exceeded", error_type=kind)
        self.retry_after = max(1, math.ceil(retry_after))
        self.limit = limit

    def headers(self) -> list[tuple[bytes, bytes]]:
        kind = "requests" if self.error_type == "requests" else "tokens"
        return [(b"retry-after", str(self.retry_after).encode()),
                (f"x-ratelimit-limit-{kind}".encode(), str(self.limit).encode())]


@dataclass
class Bucket:
    capacity: float
    level: float
    updated: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.capacity / 60.0)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the level reaches `amount`."""
        return max(0.0, (amount - self.level) * 60.0 / self.capacity)


class Quotas:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def _bucket(self, key: str, kind: str, capacity: int, now: float) -> Bucket:
        bucket = self._buckets.get((key, kind))
        if bucket is None or bucket.capacity != capacity:
            bucket = self._buckets[(key, kind)] = Bucket(float(capacity), float(capacity), now)
        else:
            bucket.refill(now)
        return bucket

    def admit(self, key: str, rpm: int | None, tpm: int | None) -> None:
        """Take one request from the key's buckets, or raise `RateLimited`."""
        now = time.monotonic()
        if tpm is not None:
            tokens = self._bucket(key, "tokens", tpm, now)
            if tokens.level <= 0:
                wait = tokens.wait_for(min(1.0, tokens.capacity))
                raise RateLimited(f"Rate limit reached for tokens per min (TPM): Limit {tpm}, Used {tpm}. Please "
                                  f"try again in {math.ceil(wait)}s.", kind="tokens", retry_after=wait, limit=tpm)
        if rpm is not None:
            requests = self._bucket(key, "requests", rpm, now)
            if requests.level < 1:
                wait = requests.wait_for(1)
                raise RateLimited(f"Rate limit reached for requests per min (RPM): Limit {rpm}, Used {rpm}, "
                                  f"Requested 1. Please try again in {math.ceil(wait)}s.", kind="requests",
                                  retry_after=wait, limit=rpm)
            requests.level -= 1

    def charge(self, key: str, tpm: int, tokens: int) -> None:
        """Take a finished response's tokens out of the key's TPM bucket (it may go into debt)."""
        if tokens > 0:
            bucket = self._bucket(key, "tokens", tpm, time.monotonic())
            bucket.level -= tokens
