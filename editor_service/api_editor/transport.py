"""The HTTP transport to a provider: one request on a connection of its own (`Transport._send`), retries
with exponential backoff and jitter never sooner than Retry-After / retry-after-ms (`_retrying`,
`backoff_delay`), requests paced to editor.max_requests_per_s (`_pace`), and an error answer turned into
what it means: a refusal, a refused key, a transient fault or the request's own fault (`_raise_for_error`).
`Transport` is mixed into ApiEditor (editor.py), which holds what it reads: settings, profile, the key,
the host."""

from __future__ import annotations

import base64
import json
import logging
import time
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any
from urllib.parse import urlencode

from editfleet_common.api_attempts import note as attempts_note
from editfleet_common.errors import Cancelled, InvalidInput, TooLarge
from editfleet_common.retry import MAX_BACKOFF_S, MAX_RETRY_AFTER_S, backoff_delay, retry_after_seconds  # noqa: F401 - re-exported

from ..server import EditorUnusable
from .failures import ApiFailure, ProviderRefused
from .wire import MAX_REPLY_BYTES

log = logging.getLogger(__package__)  # "editor_service.api_editor", the name its log lines always had

RETRY_STATUS = {408, 409, 429}  # plus every 5xx
AUTH_STATUS = {401, 403}


class _Response:
    def __init__(self, status: int, headers: dict, body: bytes | None, raw=None, conn=None):
        self.status, self.headers, self.body, self.raw, self.conn = status, headers, body, raw, conn

    def json(self) -> Any:
        return json.loads(self.body)


class _Transient(Exception):
    """A failure worth another try; `wait_hint` from the server's Retry-After."""

    def __init__(self, message: str, wait_hint: float | None = None):
        super().__init__(message)
        self.wait_hint = wait_hint


class Transport:
    """Sending, retrying, reading: the ApiEditor's requests to its provider (see the module docstring)."""

    def _send(self, method: str, path: str, body: bytes | None, headers: dict, *, stream: bool = False,
              raise_errors: bool = True) -> _Response:
        """One request on a connection of its own (closed after it: no stale keep-alive connection is
        ever mistaken for a provider fault); errors that are worth another try raise _Transient, and an
        error status is raised as what it means (_raise_for_error)."""
        query = {**self.base_query, **(self.profile.get("query") or {})}
        url = self.base_path + path + (f"?{urlencode(query)}" if query else "")
        auth = self.profile.get("auth") or {}
        all_headers = {"Accept": "text/event-stream" if stream else "application/json",
                       "User-Agent": "editfleet-editor", "Connection": "close", **headers}
        if self._key and auth.get("header"):
            all_headers[auth["header"]] = auth.get("prefix", "") + self._key
        cls = HTTPSConnection if self.scheme == "https" else HTTPConnection
        conn = cls(self.host, self.port, timeout=self.settings.request_timeout_s)
        keep_open = False
        try:
            conn.request(method, url, body=body, headers=all_headers)
            response = conn.getresponse()
            received = {k.lower(): v for k, v in response.getheaders()}
            if stream and response.status == 200:
                keep_open = True  # read as it comes; the reader closes it
                return _Response(response.status, received, None, raw=response, conn=conn)
            data = response.read(MAX_REPLY_BYTES + 1)
            if len(data) > MAX_REPLY_BYTES:
                raise TooLarge(f"the provider's reply is larger than {MAX_REPLY_BYTES} bytes")
            declared = received.get("content-length", "")
            if declared.isdigit() and len(data) < int(declared):
                raise _Transient(f"the reply was cut off ({len(data)} of {declared} bytes)")
            result = _Response(response.status, received, data)
        except TimeoutError:
            raise _Transient(f"no answer within {self.settings.request_timeout_s:g}s (editor.request_timeout_s)") from None
        except (OSError, HTTPException) as exc:  # refused, reset, cut off mid-body (IncompleteRead)
            raise _Transient(self._scrub(f"connection failed: {type(exc).__name__}: {exc}")[:500]) from None
        finally:
            if not keep_open:
                conn.close()
        if result.status >= 300 and raise_errors:
            self._raise_for_error(result.status, self._json_or_text(result), result.headers)
        return result

    def _key_refused(self) -> bool:
        """After a 401/403: whether the key is refused still (the models list answers 401/403 too), or that
        answer was a passing fault. Without a models list to ask, the answer stands."""
        path = self.profile.get("models_path")
        if not path:
            return True
        try:
            return self._send("GET", path, None, {}, raise_errors=False).status in AUTH_STATUS
        except _Transient:
            return False

    def _retrying(self, send, should_stop, attempts: list[int]):
        s = self.settings
        last = ""
        for retry in range(s.max_retries + 1):
            if should_stop():
                raise Cancelled(f"cancelled {attempts_note(attempts[0])}")
            attempts[0] += 1
            self._pace(should_stop)
            try:
                return send()
            except _Transient as exc:
                last, wait_hint = str(exc), exc.wait_hint
            if retry == s.max_retries:
                break
            delay = backoff_delay(retry, s.retry_base_s, wait_hint)
            log.warning("provider request failed (%s); retry %d of %d in %.2fs", last, retry + 1, s.max_retries, delay)
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if should_stop():
                    raise Cancelled(f"cancelled {attempts_note(attempts[0])}")
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        raise ApiFailure(f"{last} ({attempts_note(s.max_retries + 1)}; editor.max_retries {s.max_retries})")

    def _pace(self, should_stop) -> None:
        """Requests (over all slots) spaced 1/max_requests_per_s apart: never more than the provider admits in
        any second, so its limit is kept rather than met with 429s."""
        rate = self.settings.max_requests_per_s
        if rate <= 0:
            return
        with self._pace_lock:
            now = time.monotonic()
            at = max(now, self._next_send)
            self._next_send = at + 1.0 / rate
        while (left := at - time.monotonic()) > 0:
            if should_stop():
                raise Cancelled("cancelled while waiting for the provider's rate limit")
            time.sleep(min(0.2, left))

    def _raise_for_error(self, status: int, body: Any, headers: dict) -> None:
        """The exception for an error answer (raised): refusal, bad key, transient, or the request's fault."""
        error = body.get("error", body) if isinstance(body, dict) else {}
        error = error if isinstance(error, dict) else {}
        inner = error.get("innererror") if isinstance(error.get("innererror"), dict) else {}
        codes = {str(error.get(k) or "") for k in ("code", "type")} | {str(inner.get("code") or "")}
        message = str(error.get("message") or error.get("detail") or (body if isinstance(body, str) else "")
                      or (body.get("detail") if isinstance(body, dict) else "") or f"HTTP {status}")
        refusal = self.profile.get("refusal") or {}
        matched = codes & set(refusal.get("codes", []))
        patterns = [p for p in refusal.get("message_patterns", []) if p.lower() in message.lower()]
        if (status in refusal.get("status", []) or status == 200) and (matched or patterns):
            code = next(iter(matched), "content_policy_violation")
            raise ProviderRefused(self._scrub(f"refused by {self.profile.name} (content policy; HTTP {status} "
                                              f"{code}): {message}")[:2000], code)
        if status in AUTH_STATUS and not self._key_refused():
            raise _Transient(f"HTTP {status} (the key was refused once; the models list then took it)")
        if status in AUTH_STATUS:
            raise EditorUnusable(
                f"the provider at {self.endpoint_host} refused the API key from "
                f"${self.settings.api_key_env or '(none)'} (HTTP {status}"
                f"{': not authenticated' if status == 401 else ': not allowed'}); check editor.api_key_env and the key "
                "it names")
        text = self._scrub(f"HTTP {status}: {message}")[:500]
        if status in RETRY_STATUS or status >= 500 or status == 200:
            raise _Transient(text, retry_after_seconds(headers))
        raise InvalidInput(f"the provider refused the request ({text})")

    def _json(self, response: _Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise _Transient(f"a malformed reply ({len(response.body or b'')} bytes, not JSON: cut off?)") from None

    @staticmethod
    def _json_or_text(response: _Response) -> Any:
        try:
            return response.json()
        except (ValueError, TypeError):
            return (response.body or b"").decode("utf-8", "replace")[:500]

    def _b64(self, text: str) -> bytes:
        try:
            return base64.b64decode(text, validate=True)
        except (ValueError, TypeError):
            raise _Transient("the reply's image is not valid base64 (cut off?)") from None

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text
