"""API editors: the model under test behind an HTTP API instead of a local pipeline (issue 29).

    python -m editor_service --backend openai-images --provider openai --model gpt-image-1.5 \
        --base-url https://api.openai.com/v1 --api-key-env OPENAI_API_KEY --max-concurrency 8

`ApiEditor` stands where `pipeline.EditPipeline` stands: the worker (server.EditWorker, with
`max_concurrency` slots: requests in flight) calls its `prepare` and `edit`, GetInfo reports its
identity; the gRPC and HTTP adapters, the queue and the orchestrator's dispatch are the same.

Two backends, one per request shape:
  * `openai-images`: a multipart POST {base_url}/images/edits (OpenAI's images.edit), the result as
    `b64_json`; a stream of `image_edit.partial_image` events where the provider offers it and
    --partial-images asks for them (each one shown as progress);
  * `openai-chat-image`: a chat-completions POST whose user message carries the instruction and the
    images as data URLs, and whose reply carries the edit (OpenRouter's message.images[], or an
    image_url part of the content).
What differs between providers (field names, the size vocabulary, limits, the options each takes,
what its refusals look like, whether it takes a seed) is data: one JSON file per provider in
editor_service/providers/ (`--provider NAME`, or a path to a lab's own file), read by `Profile`.
There are no per-provider branches below.

Requests and faults, as the scorer's API judge does them (scorer_service/backends/openai_api.py):
  * 408, 409, 429, 5xx, timeouts, dropped connections, cut or malformed bodies: retried up to
    --max-retries times with exponential backoff and jitter, never sooner than Retry-After /
    retry-after-ms; then ApiFailure (UNAVAILABLE: the orchestrator tries the sample again, and
    records it as failed, not final, once its attempts are spent);
  * a refusal (the profile's refusal codes, statuses and message patterns; a chat reply finished by
    a content filter or carrying a `refusal`) is ProviderRefused (PERMISSION_DENIED): recorded as a
    final failure with the provider's own message, never replaced by any image;
  * a reply with no image in it is NoImage (FAILED_PRECONDITION), with the reply's text;
  * 401/403 are EditorUnusable where the key is refused still (the models list, asked at once, answers
    401/403 too; a passing one is retried): the service stops (exit 1) with one line naming the key's
    variable (the edits already accepted finish first; new calls are held until it exits); the warm-up (GET {base_url}/models where the profile has it) checks the key, and the model id,
    before serving, so a bad key costs no sample;
  * other 4xx: InvalidInput with the provider's message (a final failure of that sample).
Each result's call_arguments record the provider, the model id sent and the one answered where the
reply names it, the request id, the attempts, the latency, the usage (and cost) as reported, the
size sent and whether a seed was sent; a failure that reached the provider ends its message with
"after N attempt(s)" (N requests sent), from which the orchestrator's run totals count the requests
that brought no image (orchestrator/api_usage.py). The identity's runtime says whether the API takes a seed:
where it does not, "same seed, same edit" does not apply and the runtime says so.

The key is read from the environment variable --api-key-env names (never a flag's value); it is
sent only in the profile's auth header, and scrubbed from every message this module makes. A
base URL with credentials in it is refused. Standard library only (http.client): no torch, no
client library; an API editor starts in about a second.
"""

from __future__ import annotations

import base64
import email.utils
import io
import json
import logging
import math
import os
import threading
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlparse

from PIL import Image

from editfleet_common.api_attempts import ATTEMPTS_NOTE, note as attempts_note
from editfleet_common.errors import Cancelled, EditfleetError, InvalidInput, TooLarge
from editfleet_common.identity import ModelIdentity
from editfleet_common.images import DEFAULT_MAX_PIXELS, decode_image, encode_png

from .checks import image_header_size
from .edits import EditDefaults, EditOutput, EditRequest, EditTimings, PreparedEdit
from .server import EditorUnusable

log = logging.getLogger(__name__)

BACKENDS = ("openai-images", "openai-chat-image")
DEFAULT_PROVIDER = {"openai-images": "openai", "openai-chat-image": "openrouter"}
PROVIDERS_DIR = Path(__file__).resolve().parent / "providers"
RETRY_STATUS = {408, 409, 429}  # plus every 5xx
AUTH_STATUS = {401, 403}
MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 600.0
MAX_REPLY_BYTES = 256 << 20       # a provider's reply is read up to this (a 4K PNG in base64 is ~30 MB)
_SECRET_NAME = re.compile(r"key|token|secret|sig|password|auth|credential", re.I)
PROFILE_KEYS = {"name", "title", "backend", "source", "path", "models_path", "models_check", "auth", "query",
                "request_id_headers", "fields", "images", "prompt", "size", "options", "stream", "refusal",
                "takes_seed", "body", "reply"}


class ProviderRefused(EditfleetError):
    """The provider refused the edit (content policy, safety filter): a failure of its own kind, with the
    provider's message; never replaced by an image."""

    grpc_code = "PERMISSION_DENIED"

    def __init__(self, message: str, provider_code: str = "content_policy_violation"):
        super().__init__(message)
        self.provider_code = provider_code  # what the HTTP route answers with (http_api.error_for)


class NoImage(EditfleetError):
    """The provider answered, without an image (a chat model that replied in words only)."""

    grpc_code = "FAILED_PRECONDITION"


class ApiFailure(EditfleetError):
    """A request that kept failing (429, 5xx, timeouts, cut bodies) after every retry."""

    grpc_code = "UNAVAILABLE"


# ---------------------------------------------------------------------------------- profiles


@dataclass
class Profile:
    """One provider's shape (a JSON file in providers/; the keys are described in providers/README.md)."""

    data: dict

    @classmethod
    def load(cls, name_or_path: str, backend: str) -> "Profile":
        path = Path(name_or_path)
        if not (path.suffix == ".json" and path.is_file()):
            path = PROVIDERS_DIR / f"{name_or_path}.json"
        if not path.is_file():
            known = sorted(p.stem for p in PROVIDERS_DIR.glob("*.json"))
            raise ValueError(f"--provider {name_or_path!r}: no such provider (known: {', '.join(known)}; or a path "
                             "to a provider's .json file)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--provider {path}: cannot read it ({exc})") from None
        unknown = sorted(set(data) - PROFILE_KEYS)
        if unknown:
            raise ValueError(f"--provider {path}: unknown key(s) {', '.join(unknown)}")
        if data.get("backend") != backend:
            raise ValueError(f"--provider {data.get('name', path.stem)} is a {data.get('backend')} provider, "
                             f"not {backend} (--backend)")
        return cls(data)

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    @property
    def name(self) -> str:
        return self.data["name"]

    def field(self, name: str) -> str | None:
        return (self.data.get("fields") or {}).get(name)


# ---------------------------------------------------------------------------------- helpers


def backoff_delay(retry: int, base_s: float, retry_after_s: float | None = None, rng=random) -> float:
    """Seconds before retry number `retry` (0 for the first): exponential with jitter, at least the
    server's Retry-After (as the scorer's API judge waits)."""
    step = min(MAX_BACKOFF_S, base_s * (2 ** retry))
    delay = step / 2 + rng.uniform(0, step / 2)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay


def retry_after_seconds(headers: dict) -> float | None:
    """Retry-After (seconds or an HTTP date) or retry-after-ms, from response headers (lower-case keys)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


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


# ---------------------------------------------------------------------------------- the editor


@dataclass
class ApiSettings:
    backend: str
    model: str                        # the model id sent to the provider
    base_url: str
    provider: str = ""                # a profile name or path ('': the backend's default)
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key ('': none)
    max_concurrency: int = 4
    request_timeout_s: float = 300.0
    max_retries: int = 5
    retry_base_s: float = 1.0
    partial_images: int = 0           # ask a streaming provider for this many partial images (progress)
    max_input_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int | None = None     # below the provider's own limit
    max_requests_per_s: float = 0.0   # the provider's rate limit, kept on our side (0: none): requests spaced


class ApiEditor:
    """An edit model behind an HTTP API, in the pipeline's place (see the module docstring)."""

    def __init__(self, settings: ApiSettings, profile: Profile | None = None):
        if settings.backend not in BACKENDS:
            raise ValueError(f"--backend {settings.backend!r}: one of {', '.join(BACKENDS)}")
        self.settings = settings
        self.profile = profile or Profile.load(settings.provider or DEFAULT_PROVIDER[settings.backend], settings.backend)
        url = urlparse(settings.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"--base-url must be http(s)://host[:port]/..., got {settings.base_url!r}")
        where = url_credentials(settings.base_url)
        if where:
            raise ValueError(f"--base-url carries credentials ({where}): give the key's variable name in --api-key-env")
        self.scheme, self.host, self.port = url.scheme, url.hostname, url.port
        self.base_path = url.path.rstrip("/")
        self.base_query = dict(parse_qsl(url.query))
        self.endpoint_host = url.hostname + (f":{url.port}" if url.port else "")
        self._key = ""
        if settings.api_key_env:
            self._key = os.environ.get(settings.api_key_env, "")
            if not self._key:
                raise ValueError(f"the environment variable {settings.api_key_env} (editor.api_key_env) is not set or "
                                 "empty: it must hold the provider's API key")
            _register_secret(self._key)
        images = self.profile.get("images") or {}
        self.max_images = min(settings.max_images or images.get("max", 1), images.get("max", 1))
        self.max_input_pixels = settings.max_input_pixels
        self.call_parameters = sorted((self.profile.get("options") or {}))
        # GetInfo's defaults: the provider decides steps and guidance (0: not applicable)
        self.defaults = EditDefaults(num_inference_steps=0, guidance_scale=0.0, negative_prompt="", min_steps=0,
                                     max_steps=0)
        stream = self.profile.get("stream") or {}
        self.partial_images = min(settings.partial_images, stream.get("partial_images_max", 0)) if stream else 0
        takes_seed = bool(self.profile.get("takes_seed")) and bool(self.profile.field("seed"))
        self.identity = ModelIdentity(
            model=settings.model,
            revision="",
            content_hash=f"api:{self.profile.name}:{self.endpoint_host}/{settings.model}",
            model_class=f"{settings.backend} API ({self.profile['title']})",
            dtype="",
            device=self.endpoint_host,
            load_format="api",
            runtime={
                "backend": settings.backend,
                "provider": self.profile.name,
                "endpoint_host": self.endpoint_host,
                "max_concurrency": str(settings.max_concurrency),
                "seed": ("sent: the provider takes a seed (whether the same seed gives the same edit is the "
                         "provider's)") if takes_seed else
                        "not applicable: the API takes no seed, so the same seed does not give the same edit",
                **({"partial_images": str(self.partial_images)} if self.partial_images else {}),
            },
        )
        self.takes_seed = takes_seed
        self._pace_lock = threading.Lock()
        self._next_send = 0.0  # monotonic time before which no request goes out (max_requests_per_s)
        self.start_timings: dict[str, float] = {}

    # -- what the worker and GetInfo use --------------------------------------------------------

    def info(self) -> dict:
        return {"model": self.identity, "max_images": self.max_images, "provider": self.profile.name}

    def warm_up(self) -> None:
        """Check the key and the model id before serving (GET {base}{models_path}), where the provider
        lists its models; a refused key or an unknown model ends the start in one line."""
        from editfleet_common.service import StartFailed

        path = self.profile.get("models_path")
        if not path:
            log.info("provider %s lists no models: the key is checked by the first edit", self.profile.name)
            return
        try:
            response = self._retrying(lambda: self._send("GET", path, None, {}), lambda: False, [0])
        except EditorUnusable as exc:
            raise StartFailed(str(exc)) from None
        except (ApiFailure, InvalidInput) as exc:
            raise StartFailed(self._scrub(f"the provider at {self.endpoint_host} did not list its models: {exc}")) from None
        try:
            listed = [str(m.get("id")) for m in response.json().get("data", []) if isinstance(m, dict)]
        except (ValueError, AttributeError):
            listed = []
        model = self.settings.model
        if model in listed:
            self.identity.runtime["served_model"] = model
            log.info("provider %s at %s lists %s", self.profile.name, self.endpoint_host, model)
        elif self.profile.get("models_check") == "require":
            shown = ", ".join(listed[:10]) + (" ..." if len(listed) > 10 else "")
            raise StartFailed(f"the provider at {self.endpoint_host} does not list the model {model!r} (editor.model); "
                              f"it lists: {shown or 'none'}")
        else:
            log.warning("the provider at %s does not list %s (it lists %d models); going on", self.endpoint_host,
                        model, len(listed))

    def prepare(self, request: EditRequest, *, decode: bool = False) -> PreparedEdit:
        """Check a request against what the provider takes (the profile); InvalidInput naming the field.
        Nothing is decoded: each image is checked from its header, as the pipeline's prepare does."""
        started = time.perf_counter()
        p = self.profile
        instruction = (request.instruction or "").strip()
        if not instruction:
            raise InvalidInput("instruction: empty")
        limit = (p.get("prompt") or {}).get("max_chars")
        if limit and len(instruction) > limit:
            raise InvalidInput(f"instruction: {len(instruction)} characters, more than {p.name}'s limit of {limit}")
        for name, value, field_name in (("num_inference_steps", request.num_inference_steps, "steps"),
                                        ("guidance_scale", request.guidance_scale, "guidance"),
                                        ("negative_prompt", request.negative_prompt, "negative_prompt")):
            if value and not p.field(field_name):
                raise InvalidInput(f"{name}: {p.name}'s API takes no {field_name.replace('_', ' ')}; leave it unset")
        if request.guidance_scale is not None and not math.isfinite(request.guidance_scale):
            raise InvalidInput(f"guidance_scale: {request.guidance_scale} is not a finite number")
        inputs = request.inputs()
        if len(inputs) > self.max_images:
            raise InvalidInput(f"images: {len(inputs)} input images, but {p.name} takes at most {self.max_images} "
                               "per edit")
        images = p.get("images") or {}
        sizes = []
        for name, data in inputs:
            sizes.append(image_header_size(data, max_pixels=self.max_input_pixels, field=name))
            if images.get("max_bytes") and len(data) > images["max_bytes"]:
                raise InvalidInput(f"{name}: {len(data)} bytes, more than {p.name}'s limit of {images['max_bytes']}")
        fields: dict[str, Any] = {}
        size = self._size(request.width, request.height)
        if size is not None:
            fields["size"] = size
        if request.num_inference_steps:
            fields["steps"] = request.num_inference_steps
        if request.guidance_scale is not None:
            fields["guidance"] = float(request.guidance_scale)
        if request.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        seed = request.seed if request.seed is not None else random.randrange(2**63)
        if self.takes_seed:
            fields["seed"] = seed
        options = self._options(request.extras)
        partial = self._partial_images(request.partial_images)
        kwargs = {"fields": fields, "options": options, "partial_images": partial}
        return PreparedEdit(request, [], seed if self.takes_seed else 0, request.num_inference_steps, kwargs,
                            time.perf_counter() - started, input_sizes=sizes)

    def _size(self, width: int, height: int) -> str | None:
        spec = self.profile.get("size") or {"mode": "none"}
        mode, name = spec.get("mode", "none"), self.profile.name
        if not width:
            return spec.get("auto")
        if mode == "none" or not self.profile.field("size"):
            raise InvalidInput(f"width x height: {name}'s API takes no size; leave editor.width/height at 0")
        if mode == "list":
            asked = f"{width}x{height}"
            if asked not in spec["values"]:
                raise InvalidInput(f"width x height: {asked} is not a size {name} takes ({', '.join(spec['values'])}"
                                   + (f", or 0x0 for {spec['auto']}" if spec.get("auto") else "") + ")")
            return asked
        if mode == "aspect_ratio":
            g = math.gcd(width, height)
            ratio = f"{width // g}:{height // g}"
            if ratio not in spec["values"]:
                raise InvalidInput(f"width x height: {width}x{height} has the aspect ratio {ratio}, which {name} does "
                                   f"not take ({', '.join(spec['values'])}); the provider picks the pixels")
            return ratio
        multiple = spec.get("multiple") or 1
        for side, value in (("width", width), ("height", height)):
            if value % multiple:
                raise InvalidInput(f"{side}: {value} is not a multiple of {multiple} ({name})")
            if spec.get("max_side") and value > spec["max_side"]:
                raise InvalidInput(f"{side}: {value} is more than {name}'s largest side, {spec['max_side']}")
        if spec.get("max_pixels") and width * height > spec["max_pixels"]:
            raise InvalidInput(f"width x height: {width}x{height} is more than {name}'s {spec['max_pixels']} pixels")
        if spec.get("max_aspect") and max(width, height) > spec["max_aspect"] * min(width, height):
            raise InvalidInput(f"width x height: {width}x{height}: {name} takes aspect ratios up to "
                               f"{spec['max_aspect']}:1")
        return f"{width}x{height}"

    def _options(self, extras: dict[str, str]) -> dict[str, Any]:
        """editor.extras (each a JSON value) checked against the options the provider takes."""
        allowed = self.profile.get("options") or {}
        out = {}
        for key, raw in sorted(extras.items()):
            if key not in allowed:
                raise InvalidInput(f"extras: {key} is not an option {self.profile.name} takes"
                                   + (f" ({', '.join(sorted(allowed))})" if allowed else " (it takes none)"))
            try:
                value = json.loads(raw)
            except ValueError:
                raise InvalidInput(f"extras[{key!r}]: not valid JSON") from None
            rule = allowed[key]
            ok = True
            if "values" in rule:
                ok = value in rule["values"]
            elif "int" in rule:
                ok = isinstance(value, int) and not isinstance(value, bool) and rule["int"][0] <= value <= rule["int"][1]
            elif "number" in rule:
                ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                      and rule["number"][0] <= value <= rule["number"][1])
            elif "string" in rule:
                ok = isinstance(value, str) and len(value) <= 256
            if not ok:
                raise InvalidInput(f"extras[{key!r}]: {value!r} is not a value {self.profile.name} takes ({rule})")
            out[key] = value
        return out

    def _partial_images(self, asked: int) -> int:
        if not asked:
            return self.partial_images
        stream = self.profile.get("stream") or {}
        if not stream:
            raise InvalidInput(f"partial_images: {self.profile.name}'s API does not stream partial images")
        if not 0 <= asked <= stream["partial_images_max"]:
            raise InvalidInput(f"partial_images: {asked} outside {self.profile.name}'s range "
                               f"[0, {stream['partial_images_max']}]")
        return asked

    def edit(self, request, on_step=None, should_stop=None, *, queue_s: float = 0.0, encode: bool = True,
             last_step=None, on_preview=None) -> EditOutput:
        prepared = request if isinstance(request, PreparedEdit) else self.prepare(request)
        should_stop = should_stop or (lambda: False)
        if should_stop():
            raise Cancelled("cancelled before the request was sent")
        started = time.perf_counter()
        attempts = [0]
        if self.settings.backend == "openai-images":
            send = self._images_request(prepared, on_step, on_preview, should_stop, started)
        else:
            send = self._chat_request(prepared)
        try:
            response, reply = self._retrying(send, should_stop, attempts)
        except (ProviderRefused, NoImage, InvalidInput, TooLarge) as exc:
            # the requests it took, in the words ApiFailure and Cancelled use: the orchestrator's run totals
            # count a failed edit's requests from its message (orchestrator/api_usage.py)
            if attempts[0] and not ATTEMPTS_NOTE.search(str(exc)):
                exc.args = (f"{exc} ({attempts_note(attempts[0])})",)
            raise
        latency = time.perf_counter() - started
        decode_started = time.perf_counter()
        image_bytes = reply["image"]
        image = decode_image(image_bytes, max_pixels=max(self.max_input_pixels, DEFAULT_MAX_PIXELS), field="the reply's image")
        png = image_bytes if image_bytes.startswith(b"\x89PNG") else encode_png(image)
        request_id = next((response.headers[h.lower()] for h in self.profile.get("request_id_headers", [])
                           if response.headers.get(h.lower())), "")
        fields = prepared.kwargs["fields"]
        record = {
            "provider": self.profile.name,
            "model": self.settings.model,
            "served_model": reply.get("served_model") or self.identity.runtime.get("served_model", ""),
            "request_id": request_id,
            "attempts": attempts[0],
            "latency_s": round(latency, 4),
            "usage": reply.get("usage"),
            "size": fields.get("size"),
            "seed": fields.get("seed"),
            "seed_sent": "seed" in fields,
            "options": prepared.kwargs["options"],
            "partial_images": reply.get("partials", 0),
            "input_images": [{"width": w, "height": h} for w, h in prepared.input_sizes],
        }
        if reply.get("text"):
            record["reply_text"] = reply["text"][:2000]
        if reply.get("revised_prompt"):
            record["revised_prompt"] = reply["revised_prompt"]
        for key in ("steps", "guidance", "negative_prompt"):
            if key in fields:
                record[key] = fields[key]
        return EditOutput(
            sample_id=prepared.request.sample_id,
            image_png=png,
            width=image.size[0],
            height=image.size[1],
            seed=prepared.seed,
            num_inference_steps=prepared.steps,
            timings=EditTimings(queue_s=queue_s, run_s=latency, denoise_s=0.0,
                                encode_s=time.perf_counter() - decode_started),
            model=self.identity,
            call_arguments={k: json.dumps(v, sort_keys=True) for k, v in record.items()},
        )

    # -- the two request shapes -----------------------------------------------------------------

    def _input_files(self, prepared: PreparedEdit) -> list[tuple[bytes, str]]:
        """(bytes, file name) of each input image, in a format the provider takes (converted to PNG if not)."""
        formats = set((self.profile.get("images") or {}).get("formats") or ["PNG"])
        out = []
        for i, (name, data) in enumerate(prepared.request.inputs()):
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
            if fmt not in formats:
                data = encode_png(decode_image(data, max_pixels=self.max_input_pixels, field=name))
                fmt = "PNG"
            out.append((data, f"image-{i}.{'jpg' if fmt == 'JPEG' else fmt.lower()}"))
        return out

    def _images_request(self, prepared: PreparedEdit, on_step, on_preview, should_stop, started: float):
        p = self.profile
        fields = prepared.kwargs["fields"]
        files = self._input_files(prepared)
        image_field = p["images"]["one"] if len(files) == 1 else p["images"]["several"]
        form: list[tuple[str, Any, str | None]] = [(image_field, data, name) for data, name in files]
        form.append((p.field("prompt"), prepared.request.instruction.strip(), None))
        if p.field("model"):
            form.append((p.field("model"), self.settings.model, None))
        if p.field("response_format"):
            form.append((p.field("response_format"), "b64_json", None))
        for key in ("size", "seed", "steps", "guidance", "negative_prompt"):
            if key in fields and p.field(key):
                form.append((p.field(key), str(fields[key]), None))
        for key, value in prepared.kwargs["options"].items():
            form.append((key, value if isinstance(value, str) else json.dumps(value), None))
        partials = prepared.kwargs["partial_images"]
        if partials:
            form += [("stream", "true", None), ("partial_images", str(partials), None)]
        body, content_type = multipart_body(form)

        def send():
            response = self._send("POST", p["path"], body, {"Content-Type": content_type}, stream=bool(partials))
            if response.raw is None:
                return response, self._images_reply(response)
            return response, self._images_stream(response, partials, on_step, on_preview, should_stop, started)

        return send

    def _images_reply(self, response: _Response) -> dict:
        data = self._json(response)
        items = data.get("data") if isinstance(data, dict) else None
        if not items or not isinstance(items, list) or not isinstance(items[0], dict):
            raise NoImage(self._scrub(f"the provider's reply has no image (data: {str(items)[:300]})"))
        first = items[0]
        if not first.get("b64_json"):
            raise NoImage("the provider's reply has no b64_json image" + (" (a URL instead: this provider "
                          "answers with URLs; its profile must ask for b64_json)" if first.get("url") else ""))
        return {"image": self._b64(first["b64_json"]), "usage": data.get("usage"),
                "revised_prompt": first.get("revised_prompt"), "served_model": data.get("model")}

    def _images_stream(self, response: _Response, partials: int, on_step, on_preview, should_stop, started) -> dict:
        stream = self.profile["stream"]
        count = 0
        try:
            for name, text in sse_events(response.raw, should_stop):
                if text.startswith("[DONE]"):
                    break
                try:
                    event = json.loads(text)
                except ValueError:
                    raise _Transient(f"a malformed stream event ({text[:120]!r})") from None
                kind = event.get("type") or name
                if kind == "error" or "error" in event:
                    self._raise_for_error(200, event, {})
                if kind == stream["partial_event"]:
                    count += 1
                    if on_step is not None:
                        on_step(count, partials + 1, time.perf_counter() - started)
                    if on_preview is not None and event.get("b64_json"):
                        try:
                            on_preview(count, decode_image(self._b64(event["b64_json"]),
                                                           max_pixels=DEFAULT_MAX_PIXELS, field="a partial image"))
                        except InvalidInput as exc:
                            log.warning("partial image %d not shown: %s", count, exc)
                elif kind == stream["completed_event"]:
                    if not event.get("b64_json"):
                        raise NoImage("the provider's completed event has no image")
                    if on_step is not None:
                        on_step(partials + 1, partials + 1, time.perf_counter() - started)
                    return {"image": self._b64(event["b64_json"]), "usage": event.get("usage"), "partials": count}
        except (OSError, HTTPException) as exc:
            raise _Transient(f"the stream broke: {type(exc).__name__}: {exc}") from None
        finally:
            response.raw.close()
            response.conn.close()
        raise _Transient("the stream ended without the completed image")

    def _chat_request(self, prepared: PreparedEdit):
        p = self.profile
        fields = prepared.kwargs["fields"]
        content: list[dict] = [{"type": "text", "text": prepared.request.instruction.strip()}]
        for data, name in self._input_files(prepared):
            kind = name.rsplit(".", 1)[-1]
            content.append({"type": "image_url", "image_url": {
                "url": f"data:image/{'jpeg' if kind == 'jpg' else kind};base64," + base64.b64encode(data).decode("ascii")}})
        body: dict = json.loads(json.dumps(p.get("body") or {}))
        body[p.field("model")] = self.settings.model
        body["messages"] = [{"role": "user", "content": content}]
        for key in ("size", "seed", "steps", "guidance", "negative_prompt"):
            if key in fields and p.field(key):
                put(body, p.field(key), fields[key])
        for key, value in prepared.kwargs["options"].items():
            put(body, key, value)
        data = json.dumps(body).encode()

        def send():
            response = self._send("POST", p["path"], data, {"Content-Type": "application/json"})
            return response, self._chat_reply(response)

        return send

    def _chat_reply(self, response: _Response) -> dict:
        reply_spec = self.profile["reply"]
        data = self._json(response)
        refusal = [r for r in dig(data, reply_spec.get("refusal_path", "")) if r] if reply_spec.get("refusal_path") else []
        finish = dig(data, "choices.0.finish_reason")
        if refusal or (finish and finish[0] in reply_spec.get("refusal_finish_reasons", [])):
            reason = f"refusal: {refusal[0]}" if refusal else f"finish_reason {finish[0]}"
            raise ProviderRefused(self._scrub(f"refused by {self.profile.name} ({reason})"),
                                  "content_filter" if not refusal else "refusal")
        texts = [t for t in dig(data, reply_spec["text_path"]) if isinstance(t, str) and t.strip()]
        for path in reply_spec["image_paths"]:
            for url in dig(data, path):
                if isinstance(url, str) and url.startswith("data:image/") and ";base64," in url:
                    usage = dig(data, reply_spec.get("usage_path", "usage"))
                    served = dig(data, reply_spec.get("model_path", "model"))
                    return {"image": self._b64(url.split(";base64,", 1)[1]), "usage": usage[0] if usage else None,
                            "served_model": served[0] if served else "", "text": texts[0] if texts else ""}
        if not dig(data, "choices.0"):
            raise _Transient("the reply has no choices")
        raise NoImage(self._scrub("the provider answered without an image" +
                                  (f": {texts[0][:500]!r}" if texts else " (and without text)")))

    # -- sending, retrying, reading -------------------------------------------------------------

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


def _register_secret(key: str) -> None:
    """The key joins what the service's log lines redact, where that module is present."""
    try:
        from editfleet_common.redact import register_secret
    except ImportError:
        return
    register_secret(key)
