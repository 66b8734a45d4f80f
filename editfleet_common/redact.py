"""Secrets out of everything stored or logged, in one place: what counts as a credential in a URL, the
URL with it replaced, the same over free text, over a JSON-able object (a manifest) and over log lines
(SafeFormatter, which also escapes them so that no value can start a line of its own).

A URL carries a credential (`url_secrets` says where) in
  * its user info: `https://user:pass@host/...` (user and password both);
  * a query parameter or fragment value whose name looks like one (key, token, secret, sig, code,
    pass, pwd, auth, credential, session: Azure Functions' `?code=`, `?password=`, `?sig=`, ...), or
    whose value looks like a key whatever its name (see below);
  * a path segment that looks like a key: after a segment named like one (`/key/<x>`, `/token/<x>`),
    `name=value` / `name:value` with such a name, a known key prefix (`sk-`, `sk_`, `hf_`, `ghp_`,
    `AIza`, `xoxb-`, `glpat-`, a JWT's `eyJ`, ...), or random-looking text: a run of 20 or more
    letters and digits with both in it between the URL's word separators (- _ . ~), or 40 or more
    characters with upper- and lower-case letters and digits. (A 32-digit hex id in a path, such as an
    account id, is not taken for a key; in a query value it is.)
Values are replaced by REDACTED; the rest of the URL is kept as written. The orchestrator refuses a
judge.base_url for which url_secrets says anything (orchestrator/config.py), so what it stores and
passes on never needs redaction; redaction is the net under that for whatever else reaches a manifest
or a log (a scorer started by hand, a URL inside another setting, a library's own log line).

`register_secret(value)` adds a value (the API key a process read) that is replaced wherever it shows.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

REDACTED = "REDACTED"

_NAME_WORDS = ("key", "token", "secret", "sig", "code", "pass", "pwd", "auth", "credential", "session",
               "cookie", "bearer", "private", "jwt")
_PATH_NAMES = {"key", "keys", "apikey", "token", "tokens", "secret", "secrets", "code", "password", "passwd",
               "pwd", "sig", "signature", "credential", "credentials", "accesstoken", "sas"}
_PREFIXES = re.compile(r"^(?:sk|rk|sess)[-_][A-Za-z0-9_-]{8,}|^(?:hf|ghp|gho|ghu|ghs|ghr|glpat|xox[abprs]|github_pat)[-_]"
                       r"[A-Za-z0-9_-]{8,}|^AIza[A-Za-z0-9_-]{20,}|^eyJ[A-Za-z0-9_-]{10,}")
_PIECES = re.compile(r"[-_.~]")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s\"'<>`\\]+")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]{8,})")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """A value (at least 6 characters) to replace wherever it shows in redacted text and logs."""
    if value and len(value) >= 6:
        with _secrets_lock:
            _secrets.add(value)


def _name_is_secret(name: str) -> bool:
    normal = re.sub(r"[-_.\s]", "", name).lower()
    return any(word in normal for word in _NAME_WORDS)


def _decoded(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def looks_like_key(value: str, *, hex_ids_too: bool = True) -> bool:
    """Random-looking text, as keys are (see the module docstring)."""
    value = _decoded(value)
    if _PREFIXES.search(value):
        return True
    for piece in _PIECES.split(value):
        if len(piece) >= 20 and re.search(r"[A-Za-z]", piece) and re.search(r"[0-9]", piece):
            if not hex_ids_too and re.fullmatch(r"[0-9a-fA-F]+", piece):
                continue
            return True
    return (len(value) >= 40 and bool(re.search(r"[a-z]", value)) and bool(re.search(r"[A-Z]", value))
            and bool(re.search(r"[0-9]", value)))


def _split_url(url: str):
    """(scheme://, userinfo or None, host[:port], path, query or None, fragment or None), as written."""
    head, sep, rest = url.partition("://")
    if not sep:
        return None
    end = len(rest)
    for mark in "/?#":
        at = rest.find(mark)
        if at != -1:
            end = min(end, at)
    authority, rest = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    fragment = query = None
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
    if "?" in rest:
        rest, query = rest.split("?", 1)
    return head + sep, (userinfo if at else None), hostport, rest, query, fragment


def _params(text: str, where: str, found: list[str] | None) -> str:
    out = []
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        secret = (bool(value) and (_name_is_secret(_decoded(name)) or looks_like_key(value))) or (
            not eq and looks_like_key(name))
        if secret:
            if found is not None:
                found.append(f"{where} {_decoded(name)!r}" if eq else f"{where} value")
            part = f"{name}={REDACTED}" if eq else REDACTED
        out.append(part)
    return "&".join(out)


def _path(path: str, found: list[str] | None) -> str:
    out = []
    previous = ""
    for index, segment in enumerate(path.split("/")):
        segment, semi, matrix = segment.partition(";")  # /v1;key=... : parameters, read as a query's
        where = f"path segment {index}"
        pair = re.match(r"^([^=:]*)([=:])(.+)$", segment)  # name=value, name:value
        after_name = re.sub(r"[-_.]", "", previous.lower()) in _PATH_NAMES and len(_decoded(segment)) >= 6
        if pair and (_name_is_secret(_decoded(pair.group(1))) or looks_like_key(pair.group(3), hex_ids_too=False)):
            if found is not None:
                found.append(f"{where} ({_decoded(pair.group(1))!r}{pair.group(2)}...)")
            segment = f"{pair.group(1)}{pair.group(2)}{REDACTED}"
        elif segment and (after_name or looks_like_key(segment, hex_ids_too=False)):
            if found is not None:
                found.append(where + (f" (after /{previous}/)" if after_name else ""))
            segment = REDACTED
        previous = _decoded(segment)
        out.append(segment + (semi + _params(matrix.replace(";", "&"), f"{where} parameter", found).replace("&", ";")
                              if semi else ""))
    return "/".join(out)


def _scan(url: str, found: list[str] | None) -> str:
    parts = _split_url(url)
    if parts is None:
        return url
    scheme, userinfo, hostport, path, query, fragment = parts
    if userinfo is not None:
        if found is not None:
            found.append("user info (user:password@)")
        userinfo = REDACTED
    out = scheme + (f"{userinfo}@" if userinfo is not None else "") + hostport + _path(path, found)
    if query is not None:
        out += "?" + _params(query, "query parameter", found)
    if fragment is not None:
        out += "#" + _params(fragment, "fragment", found)
    return out


def url_secrets(url: str) -> list[str]:
    """Where `url` carries a credential (positions only, never the values); [] when nowhere."""
    found: list[str] = []
    _scan(url, found)
    with _secrets_lock:
        if any(s in url for s in _secrets):
            found.append("a known secret")
    return found


def redact_url(url: str) -> str:
    """`url` with every credential (see url_secrets) replaced by REDACTED."""
    return _registered(_scan(url, None))


def _registered(text: str) -> str:
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_text(text: str) -> str:
    """Every URL in `text` redacted, `Bearer <token>` too, and every registered secret."""
    if "://" in text:
        text = _URL.sub(lambda m: _scan(m.group(0), None), text)
    if "earer" in text or "asic" in text:
        text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _registered(text)


def redact_json(value):
    """A JSON-able value with every string in it (keys included) redacted; the same object where
    nothing needed it."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_json(k) if isinstance(k, str) else k: redact_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(v) for v in value]
    return value


# -- log lines ---------------------------------------------------------------------------------------
MAX_LOG_MESSAGE_CHARS = 4000  # one message's text in a log line; the rest is cut, and said so


def escape_line(text: str, max_chars: int = MAX_LOG_MESSAGE_CHARS) -> str:
    """`text` as one line: line breaks and other control characters as escapes (\\n, \\r, \\x1b,
    \\u2028, ...), tabs kept; longer than max_chars cut, with the count of what was cut."""
    extra = len(text) - max_chars
    if extra > 0:
        text = text[:max_chars]
    out = []
    for ch in text:
        if ch == "\t" or not (unicodedata.category(ch) in ("Cc", "Zl", "Zp")):
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    line = "".join(out)
    return line + (f"... [{extra} more characters]" if extra > 0 else "")


class SafeFormatter(logging.Formatter):
    """A log line that tells no secret and cannot be forged: the message (with its arguments, a
    sample id, an error text) escaped to one line and cut at MAX_LOG_MESSAGE_CHARS; the whole record
    (traceback included, which keeps its own lines) redacted."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        record.message = escape_line(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


__all__ = ["REDACTED", "url_secrets", "redact_url", "redact_text", "redact_json", "register_secret",
           "looks_like_key", "escape_line", "SafeFormatter", "MAX_LOG_MESSAGE_CHARS"]
