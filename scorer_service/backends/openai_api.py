"""A judge backend over an OpenAI-compatible chat-completions endpoint, with the official `openai` client.

    judge = Judge(load_backend("openai", "gpt-4.1-2025-04-14", base_url="https://api.openai.com/v1",
                               api_key_env="OPENAI_API_KEY"))

The judge (judge.py) does what it does for every backend: the protocol's prompts, parsing, the one
re-ask with the strict suffix, PARSE_FAILED with every raw text, combining. This backend answers:
  * each prompt is one chat request: the system text, then one user message with the question's
    images (PNG, base64 data URLs, as `prepare` left them after the protocol's own resizing)
    followed by its text; temperature 0, a fixed `seed`, `max_tokens` (the budget `transformers
    serve` and vLLM honour; some servers ignore `max_completion_tokens`); a batch's prompts go out
    at once, up to `max_concurrency` requests in flight over all batches;
  * a refusal raises samples.Refused with the provider's reason (the sample is REFUSED, never
    scored): a content-filter error (HTTP 400 with code content_filter / content_policy_violation,
    or Azure's "content management policy"), a reply whose finish_reason is "content_filter", or a
    `refusal` in the message;
  * 429, 5xx (and 408/409), timeouts, dropped connections and cut-off or malformed bodies are
    retried up to `max_retries` times with exponential backoff and jitter (retry n waits
    retry_base_s * 2**n, half of it fixed and half random, at most 60 s), never less than the
    server's Retry-After / retry-after-ms; then ApiFailure (the sample is ERROR; the next run retries
    it); other 4xx fail at once;
  * 401/403 raise ApiAuthError, a JudgeUnusable (gRPC UNAUTHENTICATED / PERMISSION_DENIED): the
    warm-up (one 1-token request) fails the start before any sample is spent, a stream ends and the
    orchestrator stops. The message names the environment variable; the key itself is never logged
    nor returned (every message is scrubbed of it).
Replies are samples.Reply texts carrying the tokens the endpoint reported, the model it says
answered and its system_fingerprint (summed into each outcome). The first reply's model name and
fingerprint go into the identity's runtime (`served_model`, `system_fingerprint`).

Expected score: from `top_logprobs` where the server returns them, at the position right after the
question's expected_score_prefix in the reply; else absent, never estimated (expected_from_logprobs).
A pairwise question's P(A), P(B), P(tie) likewise (pairwise_from_logprobs).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from urllib.parse import urlparse

from editfleet_common.identity import ModelIdentity
from editfleet_common.retry import backoff_delay, retry_after_seconds  # noqa: F401 - imported from here by tests
from editfleet_common.redact import redact_url, register_secret
from editfleet_common.settings import reply_budget

from ..samples import Expected, Prompt, Refused, Reply, user_content
from .base import JudgeUnusable

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 429}          # plus every 5xx
AUTH_STATUS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
FILTER_CODES = {"content_filter", "content_policy_violation", "content_filtered", "responsible_ai_policy_violation"}
_DIGITS = re.compile(r"[0-9]+")


@dataclass
class ApiSettings:
    base_url: str
    model: str                       # sent as given; the server's own name for it is recorded too
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key ("" : no key)
    max_concurrency: int = 8         # requests in flight at once
    request_timeout_s: float = 120.0
    max_retries: int = 5             # retries of one request after the first try
    retry_base_s: float = 1.0        # first backoff step
    max_new_tokens: int | None = None  # the run's budget for every protocol; None: each protocol's own (reply_budget)
    seed: int = 0
    top_logprobs: int = 20           # asked for where a question has an expected-score prefix (0: never)


class ApiAuthError(JudgeUnusable):
    """The endpoint refused the key (401) or its rights (403): nothing else can succeed."""


class ApiFailure(Exception):
    """A request that kept failing (or failed for good): the sample is ERROR."""




def expected_yes_from_logprobs(content: list, prefix: str) -> float | None:
    """P("yes") of a yes-no question from top_logprobs: at the first token after the reply reaches the
    prefix (or the prefix without its closing quote, where the quote and the word are one token), the
    listed candidates that spell yes or no (any case, quote and spaces aside), renormalised over them."""
    wants = [prefix.rstrip(), prefix.rstrip().rstrip('"').rstrip()]
    for want in wants:
        text = ""
        for token, candidates in content:
            if text.rstrip().endswith(want) and token.strip():
                mass = {1.0: 0.0, 0.0: 0.0}
                for cand, logprob in candidates:
                    word = cand.strip().strip('"').strip().lower()
                    if word in ("yes", "no"):
                        mass[1.0 if word == "yes" else 0.0] += math.exp(logprob)
                total = mass[1.0] + mass[0.0]
                if total > 0:
                    return mass[1.0] / total
                break  # the prefix was reached but nothing there spells yes or no: try the shorter form
            text += token
    return None


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def pairwise_from_logprobs(content: list, prefix: str) -> Expected | None:
    """P(Image A), P(Image B), P(Tie) of a pairwise question from top_logprobs, in the order shown:
    at the first token after the reply reaches the prefix (spaces and line breaks ignored, so that
    '{\n    "winner": "' reaches '{"winner": "'), the listed candidates that spell "Tie" (or begin it),
    "Image A", "Image B" or "Image"; where "Image" is listed, the split between A and B is read at the
    next position, known only when the reply itself took "Image" there. Renormalised over the three;
    None (absent, never estimated) where the split or the position cannot be read."""
    want = _squeezed(prefix)
    text, position = "", None
    for k, (token, _) in enumerate(content):
        if _squeezed(text).endswith(want) and token.strip():
            position = k
            break
        text += token
    if position is None:
        return None
    chosen, candidates = content[position]
    mass = {1.0: 0.0, 0.0: 0.0, 0.5: 0.0}
    image = 0.0
    for token, logprob in candidates:
        word = token.strip().strip('"').strip()
        if not word:
            continue
        p = math.exp(logprob)
        if word.lower() in ("image a", "imagea"):
            mass[1.0] += p
        elif word.lower() in ("image b", "imageb"):
            mass[0.0] += p
        elif word.lower() == "image":
            image += p
        elif "tie".startswith(word.lower()):
            mass[0.5] += p
    if image > 0:
        if chosen.strip().strip('"').strip().lower() != "image" or position + 1 >= len(content):
            return None  # the split of "Image" between A and B is not known
        after = {1.0: 0.0, 0.0: 0.0}
        for token, logprob in content[position + 1][1]:
            word = token.strip().strip('"').strip()
            if word in ("A", "B"):
                after[1.0 if word == "A" else 0.0] += math.exp(logprob)
        split = after[1.0] + after[0.0]
        if split <= 0:
            return None
        mass[1.0] += image * after[1.0] / split
        mass[0.0] += image * after[0.0] / split
    total = sum(mass.values())
    if total <= 0:
        return None
    probs = {v: m / total for v, m in mass.items()}
    return Expected.of(probs[1.0] + 0.5 * probs[0.5], probs)


def expected_from_logprobs(content: list | None, prefix: str | None, low: float, high: float, *,
                           answer: str = "number") -> float | None:
    """The expected score from the reply's top_logprobs, or None where it cannot be read exactly.

    content: [(token, [(candidate token, logprob), ...]), ...] in reply order. The score position is
    the first token after the reply's text reaches `prefix` (e.g. '{"score": '; spaces at its end are
    not required). Its candidates that are whole integers in [low, high] are the outcomes, their
    probabilities renormalised over those listed (the top-k cut drops only less likely ones). Where
    the tokenizer spells numbers digit by digit and a listed "1" may begin "10", the split between
    them is known only when the reply itself took that path ("1" then the next position); otherwise
    the value is absent, never estimated.
    """
    if not content or prefix is None:
        return None
    if answer == "yes-no":
        return expected_yes_from_logprobs(content, prefix)
    if answer == "pairwise":
        return pairwise_from_logprobs(content, prefix)
    want = prefix.rstrip()
    text, position = "", None
    for k, (token, _) in enumerate(content):
        if text.rstrip().endswith(want) and token.strip():  # whitespace after the prefix is skipped
            position = k
            break
        text += token
    if position is None:
        return None

    def numbers(candidates) -> dict[int, float]:
        out: dict[int, float] = {}
        for token, logprob in candidates:
            word = token.strip()
            if _DIGITS.fullmatch(word) and low <= int(word) <= high:
                out[int(word)] = out.get(int(word), 0.0) + math.exp(logprob)
        return out

    chosen, candidates = content[position]
    probs = numbers(candidates)
    if not probs:
        return None
    digit_split = high >= 10 and not any(v >= 10 for v in probs)
    if digit_split:
        one_may_continue = any(low <= v <= high for v in range(10, 20))
        if 1 in probs and one_may_continue:
            if chosen.strip() != "1" or position + 1 >= len(content):
                return None  # the mass of "1" cannot be split between 1 and 1x: absent
            after = content[position + 1][1]
            end = sum(math.exp(lp) for tok, lp in after if not tok[:1].isdigit())
            tails: dict[int, float] = {}
            for tok, lp in after:
                if len(tok) == 1 and _DIGITS.fullmatch(tok) and low <= int("1" + tok) <= high:
                    tails[int("1" + tok)] = tails.get(int("1" + tok), 0.0) + math.exp(lp)
            total = end + sum(tails.values())
            if total <= 0:
                return None
            p1 = probs.pop(1)
            probs[1] = p1 * end / total
            for value, p in tails.items():
                probs[value] = probs.get(value, 0.0) + p1 * p / total
    total = sum(probs.values())
    if total <= 0:
        return None
    return sum(v * p for v, p in probs.items()) / total


def _data_url(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class _Answer:
    reply: Reply
    logprobs: list | None  # [(token, [(candidate, logprob), ...]), ...] or None


class OpenAIBackend:
    """Answers the judge's prompts over an OpenAI-compatible endpoint (see the module docstring)."""

    def __init__(self, settings: ApiSettings):
        import openai  # the scorer environment has it; imported here so that the registry needs none

        self._openai = openai
        self.settings = settings
        url = urlparse(settings.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"judge base URL must be http(s)://host[:port]/..., got {redact_url(settings.base_url)!r}")
        self.endpoint_host = url.hostname + (f":{url.port}" if url.port else "")
        key = ""
        if settings.api_key_env:
            key = os.environ.get(settings.api_key_env, "")
            if not key:
                raise ValueError(f"the environment variable {settings.api_key_env} (judge.api_key_env) is not set "
                                 "or empty: it must hold the endpoint's API key")
        self._key = key
        register_secret(key)  # no log line shows it (the services' SafeFormatter); nor a URL's credentials
        self.client = openai.OpenAI(api_key=key or "none", base_url=settings.base_url,
                                    timeout=settings.request_timeout_s, max_retries=0)
        self._slots = threading.BoundedSemaphore(max(1, settings.max_concurrency))
        self._pool = ThreadPoolExecutor(max(1, settings.max_concurrency), thread_name_prefix="api")
        self._short = False  # the warm-up's one-token replies
        self.generated_tokens = 0  # completion tokens the endpoint reported (the scorer's metrics read it)
        self.identity = ModelIdentity(
            model=settings.model,
            revision="",
            content_hash=f"api:{self.endpoint_host}/{settings.model}",
            model_class="chat-completions API",
            dtype="",
            device=self.endpoint_host,
            load_format="api",
            runtime={
                "backend": "openai",
                "endpoint_host": self.endpoint_host,
                "temperature": "0",
                "seed": str(settings.seed),
                "max_concurrency": str(settings.max_concurrency),
            },
        )
        if settings.max_new_tokens is not None:  # one budget for every protocol (else each protocol's own)
            self.identity.runtime["max_new_tokens"] = str(settings.max_new_tokens)

    @classmethod
    def load(cls, model: str, **options) -> "OpenAIBackend":
        return cls(ApiSettings(model=model, **options))

    # -- JudgeBackend ---------------------------------------------------------------------------

    def generate_with_expected(self, prompts: list[Prompt], phases: dict[str, float] | None = None
                               ) -> tuple[list[str], dict[int, float | None]]:
        want = [p.question.expected_score_prefix is not None and self.settings.top_logprobs > 0 for p in prompts]
        answers = self._answer_all(prompts, want, phases)
        expected = {i: expected_from_logprobs(a.logprobs, p.question.expected_score_prefix, p.protocol.low,
                                              p.protocol.high, answer=p.question.answer)
                    for i, (p, a) in enumerate(zip(prompts, answers)) if want[i]}
        return [a.reply for a in answers], expected

    def generate(self, prompts: list[Prompt], phases: dict[str, float] | None = None) -> list[str]:
        return [a.reply for a in self._answer_all(prompts, [False] * len(prompts), phases)]

    @property
    def batches_in_flight(self) -> int:
        return max(1, self.settings.max_concurrency)

    def ready_for_next(self) -> bool:
        return True

    def batch(self):
        return nullcontext()

    @contextmanager
    def short_replies(self):
        """The warm-up: one-token replies (it runs alone, before serving)."""
        self._short = True
        try:
            yield
        finally:
            self._short = False

    def too_large(self, exc: BaseException) -> bool:
        return False

    def move_to_device(self) -> float:
        return 0.0

    # -- requests -------------------------------------------------------------------------------

    def _answer_all(self, prompts: list[Prompt], want_logprobs: list[bool], phases) -> list[_Answer]:
        started = time.monotonic()
        jobs = list(zip(prompts, want_logprobs))
        if len(jobs) == 1:
            answers = [self._answer(*jobs[0])]
        else:  # at once (viescore's two questions; batches of several samples)
            answers = list(self._pool.map(lambda job: self._answer(*job), jobs))
        if phases is not None:
            phases["api"] = phases.get("api", 0.0) + time.monotonic() - started
        for answer in answers:
            self.generated_tokens += answer.reply.completion_tokens
            if answer.reply.served_model:
                self.identity.runtime.setdefault("served_model", answer.reply.served_model)
            if answer.reply.system_fingerprint:
                self.identity.runtime.setdefault("system_fingerprint", answer.reply.system_fingerprint)
        return answers

    def _answer(self, prompt: Prompt, logprobs: bool) -> _Answer:
        messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
        content = [{"type": "text", "text": value} if kind == "text" else
                   {"type": "image_url", "image_url": {"url": _data_url(value)}} for kind, value in user_content(prompt)]
        messages.append({"role": "user", "content": content})
        # the run's budget, else the suite's own where its protocol names one (the warm-up: one token)
        budget = 1 if self._short else reply_budget(self.settings.max_new_tokens, prompt.protocol.max_new_tokens)
        return self._request(messages, logprobs=logprobs, max_tokens=budget)

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _request(self, messages: list[dict], *, logprobs: bool, max_tokens: int) -> _Answer:
        s = self.settings
        kwargs = dict(model=s.model, messages=messages, temperature=0, seed=s.seed, max_tokens=max_tokens)
        if logprobs:
            kwargs.update(logprobs=True, top_logprobs=s.top_logprobs)
        last = ""
        for retry in range(s.max_retries + 1):
            wait_hint = None
            try:
                with self._slots:
                    response = self.client.chat.completions.create(**kwargs)
                return self._read(response)
            except Refused:
                raise
            except self._openai.APIStatusError as exc:
                code = exc.status_code
                if code in AUTH_STATUS:
                    raise ApiAuthError(
                        f"the judge endpoint {self.endpoint_host} refused the API key from ${s.api_key_env or '(none)'} "
                        f"(HTTP {code}{': not authenticated' if code == 401 else ': not allowed'}); "
                        "check judge.api_key_env and the key it names", AUTH_STATUS[code]) from None
                body = exc.body if isinstance(exc.body, dict) else {}
                reason = _filter_reason(code, body, str(exc.message or ""))
                if reason:
                    raise Refused(self._scrub(reason)) from None
                last = self._scrub(f"HTTP {code}: {exc.message}")[:500]
                if code not in RETRY_STATUS and code < 500:
                    raise ApiFailure(last) from None
                wait_hint = retry_after_seconds(exc.response.headers if exc.response is not None else None)
            except self._openai.APITimeoutError:
                last = f"no answer within {s.request_timeout_s:g}s (judge.request_timeout_s)"
            except self._openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                last = self._scrub(f"connection failed: {type(cause).__name__}: {cause}")[:500]
            except (self._openai.APIResponseValidationError, ValueError) as exc:
                last = self._scrub(f"malformed response: {type(exc).__name__}: {exc}")[:500]
            if retry == s.max_retries:
                break
            delay = backoff_delay(retry, s.retry_base_s, wait_hint)
            log.warning("judge request failed (%s); retry %d of %d in %.2fs", last, retry + 1, s.max_retries, delay)
            time.sleep(delay)
        raise ApiFailure(f"{last} (after {s.max_retries + 1} attempt(s); judge.max_retries {s.max_retries})")

    def _read(self, response) -> _Answer:
        choices = getattr(response, "choices", None)
        if not choices:
            raise ValueError("the response has no choices")
        choice = choices[0]
        message = choice.message
        refusal = getattr(message, "refusal", None)
        if refusal:
            raise Refused(self._scrub(f"refusal: {refusal}"))
        if choice.finish_reason == "content_filter":
            extra = (choice.model_extra or {}).get("content_filter_results")
            raise Refused("content filter (finish_reason content_filter)"
                          + (f": {json.dumps(extra, sort_keys=True)}" if extra else ""))
        usage = getattr(response, "usage", None)
        reply = Reply.of(message.content or "",
                         prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                         completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                         served_model=str(getattr(response, "model", "") or ""),
                         system_fingerprint=str(getattr(response, "system_fingerprint", "") or ""))
        logprobs = None
        lp = getattr(choice, "logprobs", None)
        if lp is not None and getattr(lp, "content", None):
            logprobs = [(c.token, [(t.token, t.logprob) for t in (c.top_logprobs or [])]) for c in lp.content]
        return _Answer(reply, logprobs)


def _filter_reason(code: int, body: dict, message: str) -> str:
    """The provider's reason when an error is a content-filter refusal, else ''."""
    error = body.get("error", body) if isinstance(body, dict) else {}
    error = error if isinstance(error, dict) else {}
    codes = {str(error.get("code") or ""), str(error.get("type") or "")}
    inner = error.get("innererror") if isinstance(error.get("innererror"), dict) else {}
    codes.add(str(inner.get("code") or ""))
    text = str(error.get("message") or message)
    if code == 400 and (codes & FILTER_CODES or "content management policy" in text.lower()):
        detail = inner.get("content_filter_result")
        return f"content filter (HTTP 400, {next(iter(codes & FILTER_CODES), 'content_filter')}): {text}" + (
            f" [{json.dumps(detail, sort_keys=True)}]" if detail else "")
    return ""
