"""The judge: scores image edits in batches with a backend that answers prompts. Knows nothing of gRPC.

    judge = Judge.load("Qwen/Qwen3-VL-8B-Instruct", device="cuda", dtype="bfloat16")  # transformers
    samples = [prepare(ScoreInput(...), registry), ...]   # samples.py; validation raises InvalidInput
    outcomes = judge.score(samples)                        # one ScoreOutcome per sample, same order

Scoring a batch:
  1. every (sample, question) becomes one chat prompt (samples.build_prompts); the backend answers
     them as one batch, with the expected score (expected_score.py) of the questions that ask for it;
  2. replies that cannot be parsed (parsing.py) are asked again, once, with the protocol's stricter
     suffix (batched too); if that fails as well the sample is PARSE_FAILED with every raw text:
     never a default, never a guess. The sample's other questions that did parse keep their values
     as sub-scores "parsed.<name>" (combine.parsed_sub_scores), for the suites that count each
     question on its own;
  3. each sample's scores are combined as its protocol says.
A batch that fails is retried in halves where it did not fit the device, else sample by sample, so
that one bad sample cannot take the others down (those failing alone get status ERROR).

Backends (backends/): "transformers" (a local chat VLM, batched: backends/transformers), "openai" (any
OpenAI-compatible chat-completions endpoint: backends/openai_api.py). A backend that is refused a
prompt raises samples.Refused (the sample is REFUSED); one that cannot judge at all raises
backends.base.JudgeUnusable, which is not isolated per sample but ends the call.
"""

from __future__ import annotations

import logging
import time

from .backends import load_backend
from .backends.base import JudgeBackend, JudgeUnusable
from suites.shared.combine import parsed_sub_scores
from suites.shared.parsing import PAIR_WINNERS, parse_for
from .samples import (  # noqa: F401 - the judge's inputs and outputs, importable from here
    STATUS_ERROR,
    STATUS_INVALID,
    STATUS_OK,
    STATUS_PARSE_FAILED,
    STATUS_REFUSED,
    PairOrder,
    PairVerdict,
    PreparedSample,
    Prompt,
    Refused,
    ScoreInput,
    ScoreOutcome,
    add_usage,
    build_prompts,
    error_outcome,
    prepare,
)

log = logging.getLogger(__name__)


def _parse(prompt: Prompt, text: str):
    """One reply through its question's parser (the question's, else the protocol's)."""
    protocol = prompt.protocol
    return parse_for(protocol.parser_name(prompt.question), prompt.question.scores)(
        text, len(prompt.question.scores), protocol.low, protocol.high)


def _log_failure(sample: PreparedSample, exc: BaseException) -> None:
    if isinstance(exc, Refused):  # the judge's answer, not a fault
        log.warning("judge refused sample %s: %s", sample.sample_id, exc.reason)
    else:
        log.exception("judge failed on sample %s", sample.sample_id)


class Judge:
    def __init__(self, backend: JudgeBackend, *, max_attempts: int = 2):
        self.backend = backend
        # 1: no re-ask (benchmarks comparing against a loop that never re-asks)
        self.max_attempts = max_attempts

    @classmethod
    def load(cls, model: str, *, backend: str = "transformers", max_attempts: int = 2, **options) -> "Judge":
        """The judge on `backend` loaded with `options` (for transformers: backends/transformers)."""
        return cls(load_backend(backend, model, **options), max_attempts=max_attempts)

    @property
    def identity(self):
        return self.backend.identity

    @property
    def batches_in_flight(self) -> int:
        """How many batches score() can usefully run at once (the backend's say)."""
        return self.backend.batches_in_flight

    def ready_for_next(self) -> bool:
        """Whether a new batch would start at once."""
        return self.backend.ready_for_next()

    def move_to_device(self) -> float:
        return self.backend.move_to_device()

    def warm_up(self, sample: PreparedSample) -> ScoreOutcome:
        """One sample through every path a batch takes with short replies and no re-ask: the first
        real batch pays no lazy initialisation, and start-up does not pay a full-length reply.
        Before serving only."""
        saved = self.max_attempts
        self.max_attempts = 1
        try:
            with self.backend.short_replies():
                return self._score_isolating_failures([sample])[0]
        finally:
            self.max_attempts = saved

    def prompt_tokens(self, sample: PreparedSample) -> dict[str, int] | None:
        """question name -> the tokens of its longest prompt (first attempt or the stricter re-ask),
        images included, as the backend would feed them; None where the backend cannot count (an API).
        Cheap (no model): the server checks it before a sample is queued (--max-prompt-tokens)."""
        count = getattr(self.backend, "count_prompt_tokens", None)
        if count is None:
            return None
        prompts = build_prompts([sample])
        if self.max_attempts > 1:
            prompts += build_prompts([sample], strict=True)
        counts = count(prompts)
        if counts is None:
            return None
        longest: dict[str, int] = {}
        for prompt, n in zip(prompts, counts):
            longest[prompt.question.name] = max(n, longest.get(prompt.question.name, 0))
        return longest

    def score(self, samples: list[PreparedSample]) -> list[ScoreOutcome]:
        """Score a batch (see the module docstring). Callable from several threads at once, up to
        `batches_in_flight` usefully."""
        with self.backend.batch():
            return self._score_isolating_failures(samples)

    def _score_isolating_failures(self, samples: list[PreparedSample]) -> list[ScoreOutcome]:
        try:
            return self.score_batch(samples)
        except JudgeUnusable:
            raise  # nothing else can succeed either: not one sample's failure
        except Exception as exc:  # noqa: BLE001 - isolate, then report per sample
            if len(samples) == 1:
                _log_failure(samples[0], exc)
                return [error_outcome(samples[0], exc)]
            if self.backend.too_large(exc):
                # too large for this device, not a bad sample: halves (a 96-sample batch on a smaller card
                # then costs a few retries, not 96 single-sample batches)
                half = len(samples) // 2
                log.warning("batch of %d ran out of device memory; retrying as %d + %d", len(samples), half,
                            len(samples) - half)
                return self._score_isolating_failures(samples[:half]) + self._score_isolating_failures(samples[half:])
            log.warning("batch of %d failed (%s: %s); retrying one by one", len(samples), type(exc).__name__, exc)
        outcomes = []
        for sample in samples:
            try:
                outcomes.extend(self.score_batch([sample]))
            except JudgeUnusable:
                raise
            except Exception as exc:  # noqa: BLE001
                _log_failure(sample, exc)
                outcomes.append(error_outcome(sample, exc))
        return outcomes

    def score_batch(self, samples: list[PreparedSample]) -> list[ScoreOutcome]:
        """One batch as it is: ask, re-ask what did not parse, combine (failures raise)."""
        started = time.monotonic()
        phases: dict[str, float] = {}
        prompts = build_prompts(samples)
        texts, expected = self.backend.generate_with_expected(prompts, phases)
        raw: list[list[str]] = [[t] for t in texts]
        parsed = [_parse(p, t) for p, t in zip(prompts, texts)]
        retry = [i for i, p in enumerate(parsed) if not p.ok] if self.max_attempts > 1 else []
        if retry:
            strict_prompts = build_prompts(samples, strict=True)
            retry_texts = self.backend.generate([strict_prompts[i] for i in retry], phases)
            for i, text in zip(retry, retry_texts):
                raw[i].append(text)
                parsed[i] = _parse(prompts[i], text)

        outcomes = []
        for s_idx, sample in enumerate(samples):
            mine = [i for i, p in enumerate(prompts) if p.sample_index == s_idx]
            protocol = sample.protocol
            outcome = ScoreOutcome(
                sample_id=sample.sample_id,
                status=STATUS_OK,
                protocol=protocol.name,
                protocol_hash=protocol.sha256,
                raw_responses=[str(text) for i in mine for text in raw[i]],
                attempts=max(len(raw[i]) for i in mine),
            )
            add_usage(outcome, [text for i in mine for text in raw[i]])  # tokens etc. where an API reported them
            if protocol.pairwise:
                outcomes.append(_pairwise(outcome, sample, [(prompts[i], parsed[i], raw[i], expected.get(i))
                                                            for i in mine]))
                continue
            exp = [(prompts[i].question.name, expected[i]) for i in mine if expected.get(i) is not None]
            if exp:  # the first question's; with several, each one's is a sub-score "expected.<question>"
                outcome.expected_score = exp[0][1]
            failed = [i for i in mine if not parsed[i].ok]
            if failed:
                outcome.status = STATUS_PARSE_FAILED
                outcome.error = "; ".join(f"{prompts[i].question.name}: {parsed[i].reason}" for i in failed)
                # the questions that did parse keep their values ("parsed.<name>"; combine.py), no headline
                outcome.sub_scores = parsed_sub_scores(protocol, {prompts[i].question.name: parsed[i].scores
                                                                  for i in mine if parsed[i].ok})
            else:
                scores = {prompts[i].question.name: parsed[i].scores for i in mine}
                outcome.score, outcome.sub_scores = protocol.combine_scores(scores)
                if len(exp) > 1:
                    outcome.sub_scores += [(f"expected.{name}", value) for name, value in exp]
                outcome.response = "\n".join(parsed[i].response for i in mine if parsed[i].response)
            outcomes.append(outcome)
        ok = sum(o.status == STATUS_OK for o in outcomes)
        phases_text = ", ".join(f"{name} {value:.2f}s" for name, value in phases.items())
        log.info("batch: %d sample(s), %d prompt(s), %d re-asked, %d OK, %d PARSE_FAILED in %.2fs%s",
                 len(samples), len(prompts), len(retry), ok, len(outcomes) - ok, time.monotonic() - started,
                 f" ({phases_text})" if phases_text else "")
        return outcomes


def _pairwise(outcome: ScoreOutcome, sample: PreparedSample, asked: list) -> ScoreOutcome:
    """A pairwise sample's outcome from its prompts (each question once per order): every order's
    answer in the request's terms (A = edited_image), the question's verdict by the protocol's rule
    (`pairwise.disagreement`: "tie" or "none" where both orders were read and differ). Any unreadable
    order: PARSE_FAILED, nothing guessed (the questions with a verdict keep it, as parsed.<question>
    and in `pairwise`). asked: (prompt, parsed, raw texts, expected) per prompt."""
    protocol = sample.protocol
    rule = (protocol.pairwise or {}).get("disagreement", "tie")
    values: dict[str, list[float]] = {}
    failures, responses = [], []
    for question in sample.questions or protocol.questions:
        verdict = PairVerdict(question=question.name)
        for prompt, parsed, texts, expected in asked:
            if prompt.question.name != question.name:
                continue
            order = PairOrder(swapped=prompt.swapped, raw_responses=[str(t) for t in texts])
            if parsed.ok:
                value = parsed.scores[0]
                order.winner = PAIR_WINNERS[1.0 - value if prompt.swapped else value]
                if parsed.response:
                    responses.append(parsed.response)
            else:
                order.error = parsed.reason
                failures.append(f"{question.name}{' (swapped)' if prompt.swapped else ''}: {parsed.reason}")
            probs = getattr(expected, "probs", None)
            if probs:  # P(shown A), P(shown B), P(tie): back in the request's terms
                shown_a, shown_b = probs.get(1.0, 0.0), probs.get(0.0, 0.0)
                order.p_a, order.p_b = (shown_b, shown_a) if prompt.swapped else (shown_a, shown_b)
                order.p_tie = probs.get(0.5, 0.0)
            verdict.orders.append(order)
        read = [o.winner for o in verdict.orders]
        if not all(read):
            verdict.rule = "unreadable"
        elif len(read) == 1:
            verdict.winner, verdict.rule = read[0], "one order"
        elif len(set(read)) == 1:
            verdict.winner, verdict.rule = read[0], "agree"
        else:
            verdict.disagreement = True
            verdict.winner = "tie" if rule == "tie" else ""
            verdict.rule = f"disagreement: {'tie' if rule == 'tie' else 'no verdict'}"
        if verdict.winner:
            values[question.name] = [{"A": 1.0, "B": 0.0, "tie": 0.5}[verdict.winner]]
        outcome.pairwise.append(verdict)
    outcome.response = "\n".join(responses)
    if failures:
        outcome.status = STATUS_PARSE_FAILED
        outcome.error = "; ".join(failures)
        outcome.sub_scores = parsed_sub_scores(protocol, values)
    elif not values:
        outcome.status = STATUS_PARSE_FAILED
        outcome.error = "no verdict: the two orders disagree in every question (pairwise.disagreement: none)"
    else:
        outcome.score, outcome.sub_scores = protocol.combine_scores(values)
    return outcome
