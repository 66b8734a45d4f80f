"""What the judge needs of a backend (the model that answers prompts): a `JudgeBackend`.

A backend turns prompts (samples.Prompt: system text, user text, images) into reply texts and,
where it can, expected scores; the judge (judge.py) does the rest: prompts from samples, parsing,
the one re-ask, outcomes, and isolating failures. A backend knows nothing of gRPC nor of parsing.

Backends live in this package, one module (or package) each, named in `backends.BACKENDS`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from editfleet_common.errors import EditfleetError
from editfleet_common.identity import ModelIdentity

from ..samples import Prompt


class JudgeUnusable(EditfleetError):
    """No sample can be judged now (e.g. an API refused the key: 401/403). Not turned into a sample's
    ERROR: the warm-up fails the start, a stream ends with `grpc_code` and the orchestrator stops."""

    def __init__(self, message: str, grpc_code: str = "FAILED_PRECONDITION"):
        super().__init__(message)
        self.grpc_code = grpc_code


# A backend may also raise samples.Refused for a prompt it was refused (the sample is REFUSED), and may
# return samples.Reply texts that carry tokens and the served model (summed into the outcome).


class JudgeBackend(Protocol):
    identity: ModelIdentity  # what answers (model, hash, dtype, device; `runtime`: how it runs)
    generated_tokens: int    # tokens generated so far, all batches (the metric editfleet_scorer_generated_tokens)

    def generate_with_expected(self, prompts: list[Prompt], phases: dict[str, float] | None = None
                               ) -> tuple[list[str], dict[int, float | None]]:
        """First attempts: one reply per prompt (same order) and, for prompts whose question has an
        `expected_score_prefix`, prompt index -> expected score (None or absent: none to give).
        phases: seconds per phase of the batch are added here (for its log line)."""

    def generate(self, prompts: list[Prompt], phases: dict[str, float] | None = None) -> list[str]:
        """Replies only (the re-ask)."""

    @property
    def batches_in_flight(self) -> int:
        """How many batches may usefully run at once (the batcher keeps this many in flight)."""

    def ready_for_next(self) -> bool:
        """Whether a new batch would start at once (the batcher's cue to form the next one)."""

    def batch(self) -> AbstractContextManager:
        """Held around the scoring of one batch (a backend may count batches in flight)."""

    def short_replies(self) -> AbstractContextManager:
        """Held around the warm-up: replies of a couple of tokens."""

    def too_large(self, exc: BaseException) -> bool:
        """Whether `exc` means the batch did not fit (it is then retried in halves); frees what it can."""

    def move_to_device(self) -> float:
        """Move a model staged in host memory to its device; seconds taken (0 where there is none)."""
