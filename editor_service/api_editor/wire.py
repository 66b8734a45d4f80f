"""What goes over the wire, as plain functions: the multipart form of an images edit, the events of a
text/event-stream reply, dotted paths into a JSON body (read: `dig`, written: `put`), and what in a base URL
looks like a credential."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any, Callable
from urllib.parse import parse_qsl, urlparse

from editfleet_common.errors import Cancelled

MAX_REPLY_BYTES = 256 << 20       # a provider's reply is read up to this (a 4K PNG in base64 is ~30 MB)
_SECRET_NAME = re.compile(r"key|token|secret|sig|password|auth|credential", re.I)


def url_credentials(url: str) -> str | None:
    """What in a base URL looks like a credential (user info, a key-like query parameter), or None."""
    parsed = urlparse(url)
    if parsed.username or parsed.password:
        return "user info"
    for name, _ in parse_qsl(parsed.query, keep_blank_values=True):
        if _SECRET_NAME.search(name):
            return f"query parameter {name!r}"
    return None


def dig(data: Any, path: str) -> list:
    """Values at a dotted path with '*' for every item of a list: dig(r, 'choices.0.message.images.*.image_url.url')."""
    found = [data]
    for part in path.split("."):
        nxt = []
        for item in found:
            if part == "*" and isinstance(item, list):
                nxt.extend(item)
            elif isinstance(item, list) and part.isdigit() and int(part) < len(item):
                nxt.append(item[int(part)])
            elif isinstance(item, dict) and part in item:
                nxt.append(item[part])
        found = nxt
    return found


def put(body: dict, path: str, value: Any) -> None:
    """body at a dotted path set to value (dicts made on the way): put(b, 'image_config.aspect_ratio', '1:1')."""
    *parents, last = path.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[last] = value


def multipart_body(fields: list[tuple[str, str | bytes, str | None]]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data body; fields: (name, value, filename or None)."""
    boundary = "editfleet-" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, value, filename in fields:
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.write(f"Content-Disposition: {disposition}\r\n".encode())
        if filename:
            kind = filename.rsplit(".", 1)[-1].lower()
            out.write(f"Content-Type: image/{'jpeg' if kind == 'jpg' else kind}\r\n".encode())
        out.write(b"\r\n")
        out.write(value if isinstance(value, bytes) else str(value).encode())
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def sse_events(response, should_stop: Callable[[], bool]):
    """(event name, data text) of a text/event-stream response, as they come."""
    name, data = None, []
    while True:
        if should_stop():
            raise Cancelled("cancelled while the provider streamed")
        line = response.readline(MAX_REPLY_BYTES)
        if not line:
            if data:
                yield name, "\n".join(data)
            return
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
