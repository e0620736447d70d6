"""Large payloads in S3 (claim check): every S3 call of the app.

DynamoDB items stop at 400 KB. An event whose JSON details are larger than
``INLINE_LIMIT`` is stored in the payload bucket and its item keeps only the object key;
reading the event fetches it back, so callers (and the API) never see the difference.

Keys are content addressed (``payloads/<execution id>/<sha256>.json``): two writers racing
for the same event number each write their own object, and the one whose conditional
DynamoDB write wins points at its own content. An object is never overwritten with other
content, so a process-wide cache of fetched objects cannot go stale.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from threading import Lock
from typing import Any

import boto3

from chalicelib.config import Settings

#: Event details above this many bytes (UTF-8 JSON) go to S3.
INLINE_LIMIT = 64 * 1024
#: Fetched payloads kept in memory per process (a warm Lambda reuses them across steps).
CACHE_BYTES = 32 * 1024 * 1024
PREFIX = "payloads/"


class PayloadStore:
    def __init__(self, settings: Settings, client: Any | None = None, inline_limit: int = INLINE_LIMIT) -> None:
        self._settings = settings
        self._client = client
        self.inline_limit = inline_limit
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cached_bytes = 0
        self._lock = Lock()

    @property
    def bucket(self) -> str:
        return self._settings.payload_bucket

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client(
                "s3", region_name=self._settings.region, endpoint_url=self._settings.endpoint_url
            )
        return self._client

    def needs_offload(self, text: str) -> bool:
        return len(text.encode("utf-8")) > self.inline_limit

    def put(self, execution_id: str, text: str) -> str:
        """Store ``text`` and return its key."""
        body = text.encode("utf-8")
        key = f"{PREFIX}{execution_id}/{hashlib.sha256(body).hexdigest()}.json"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        self._remember(key, text)
        return key

    def get(self, key: str) -> str:
        """The text stored under ``key`` (from the cache when this process saw it already)."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        text = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")
        self._remember(key, text)
        return text

    def _remember(self, key: str, text: str) -> None:
        size = len(text)
        if size > CACHE_BYTES // 4:
            return
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = text
            self._cached_bytes += size
            while self._cached_bytes > CACHE_BYTES and self._cache:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= len(dropped)

    # ------------------------------------------------------------ kept results
    def keep_result(self, execution_id: str, step_id: str, attempt: int, text: str) -> str:
        """Keep a finished attempt's result that could not be recorded: S3 is a
        different service from the table that just failed, so the result outlives the worker."""
        key = _result_key(execution_id, step_id, attempt)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/json")
        return key

    def kept_result(self, execution_id: str, step_id: str, attempt: int) -> str | None:
        """The result kept by ``keep_result`` for this attempt, or None."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=_result_key(execution_id, step_id, attempt))["Body"]
        except self.client.exceptions.NoSuchKey:
            return None
        return body.read().decode("utf-8")


def _result_key(execution_id: str, step_id: str, attempt: int) -> str:
    digest = hashlib.sha256(step_id.encode()).hexdigest()[:16]
    return f"{PREFIX}{execution_id}/result-{digest}-{attempt}.json"
