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
There are no per-provider branches in this package.

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
sent only in the profile's auth header, and scrubbed from every message this package makes. A
base URL with credentials in it is refused. Standard library only (http.client): no torch, no
client library; an API editor starts in about a second.

One job a module: profile.py (the provider files, loaded and checked), prepare.py (a request checked
against the profile), shapes.py (the two request shapes and their replies), transport.py (one request,
retries, Retry-After, backoff, pacing, error answers), wire.py (multipart, server-sent events, JSON paths),
failures.py (refusals and the other failures of an API edit), editor.py (ApiEditor and ApiSettings: the
identity, the warm-up, an edit's result and its record). Every public name is importable from here.
"""

from .editor import ApiEditor, ApiSettings
from .failures import ApiFailure, NoImage, ProviderRefused
from .profile import BACKENDS, DEFAULT_PROVIDER, PROFILE_KEYS, PROVIDERS_DIR, Profile
from .transport import AUTH_STATUS, MAX_BACKOFF_S, MAX_RETRY_AFTER_S, RETRY_STATUS, backoff_delay, retry_after_seconds
from .wire import MAX_REPLY_BYTES, dig, multipart_body, put, sse_events, url_credentials

__all__ = ["AUTH_STATUS", "BACKENDS", "DEFAULT_PROVIDER", "MAX_BACKOFF_S", "MAX_REPLY_BYTES", "MAX_RETRY_AFTER_S",
           "PROFILE_KEYS", "PROVIDERS_DIR", "RETRY_STATUS", "ApiEditor", "ApiFailure", "ApiSettings", "NoImage",
           "Profile", "ProviderRefused", "backoff_delay", "dig", "multipart_body", "put", "retry_after_seconds",
           "sse_events", "url_credentials"]
