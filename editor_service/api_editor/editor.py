"""`ApiEditor`, the edit model behind an HTTP API in the pipeline's place, and its settings (`ApiSettings`):
it reads the key from the environment, makes the identity GetInfo reports, checks the key and the model id
before serving (`warm_up`), and turns an edit into a provider call and a result whose call_arguments
record the provider, the model, the request id, the attempts, the latency and the usage. The checks
(prepare.py), the request shapes (shapes.py) and the transport (transport.py) are mixed in."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlparse

from editfleet_common.api_attempts import ATTEMPTS_NOTE, note as attempts_note
from editfleet_common.errors import Cancelled, InvalidInput, TooLarge
from editfleet_common.identity import ModelIdentity
from editfleet_common.images import DEFAULT_MAX_PIXELS, decode_image, encode_png

from ..edits import EditDefaults, EditOutput, EditTimings, PreparedEdit
from ..server import EditorUnusable
from .failures import ApiFailure, NoImage, ProviderRefused
from .prepare import RequestChecks
from .profile import BACKENDS, DEFAULT_PROVIDER, Profile
from .shapes import RequestShapes
from .transport import Transport
from .wire import url_credentials

log = logging.getLogger(__package__)  # "editor_service.api_editor", the name its log lines always had


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


class ApiEditor(RequestChecks, RequestShapes, Transport):
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


def _register_secret(key: str) -> None:
    """The key joins what the service's log lines redact, where that module is present."""
    try:
        from editfleet_common.redact import register_secret
    except ImportError:
        return
    register_secret(key)
