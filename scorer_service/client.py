"""Client for the scorer service. Imports no torch: the orchestrator's environment uses it.

    from scorer_service.client import ScorerClient

    with ScorerClient("127.0.0.1:50052") as scorer:
        scorer.wait_ready(timeout=600)
        result = scorer.score("s1", edited_image=png, source_image=src_png,
                              instruction="make the sky red", category="physical",
                              variables={"original_description": "a beach"})
        for result in scorer.score_many(requests):   # ScoreStream: results in any order
            print(result.sample_id, status_name(result), result.score)
        print(scorer.info().batch_stats)

Calls raise editfleet_common.channels.ServiceError (code, message, retryable; the editor client
raises the same) on call-level failures (INVALID_ARGUMENT for a bad unary request,
RESOURCE_EXHAUSTED when the queue is full, UNAVAILABLE while loading or unreachable). In a stream,
a bad item comes back as a result with status SCORE_STATUS_INVALID and the stream goes on.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Sequence

from editfleet.v1 import common_pb2, scorer_pb2, scorer_pb2_grpc

from editfleet_common.channels import ClientTls, ServiceClient, ServiceError, ServiceStream, service_errors  # noqa: F401
from editfleet_common.grpc_server import DEFAULT_MAX_MESSAGE_BYTES
from editfleet_common.identity import identity_from_proto

from editfleet_common import statuses

ScoreRequest = scorer_pb2.ScoreRequest
ScoreResult = scorer_pb2.ScoreResult
ScorerInfo = scorer_pb2.ScorerInfo

# Health service name that a scorer started with --stage-on-host reports SERVING once the judge is
# staged in host memory and only the go signal (SIGUSR1) is missing.
STAGED_HEALTH_SERVICE = "editfleet.v1.Scorer.staged"

_REQUEST_FIELDS = ("sample_id", "source_image", "edited_image", "instruction", "category", "protocol", "variables",
                   "more_source_images", "reference_images", "edited_image_b", "questions", "pair_orders")


def make_request(
    sample_id: str,
    *,
    edited_image: bytes = b"",
    source_image: bytes = b"",
    instruction: str = "",
    category: str = "",
    protocol: str = "",
    variables: Mapping[str, str] | None = None,
    more_source_images: Sequence[bytes] = (),
    reference_images: Sequence[bytes] = (),
    edited_image_b: bytes = b"",
    questions: Sequence[str] = (),
    pair_orders: str = "",
) -> scorer_pb2.ScoreRequest:
    """edited_image_b, questions, pair_orders: pairwise protocols (the second edit; ask only these
    questions; "one" or "both" orders), see scorer.proto."""
    return scorer_pb2.ScoreRequest(
        sample_id=sample_id,
        source_image=source_image,
        edited_image=edited_image,
        instruction=instruction,
        category=category,
        protocol=protocol,
        variables=dict(variables or {}),
        more_source_images=list(more_source_images),
        reference_images=list(reference_images),
        edited_image_b=edited_image_b,
        questions=list(questions),
        pair_orders=pair_orders,
    )


def _as_request(item) -> scorer_pb2.ScoreRequest:
    if isinstance(item, scorer_pb2.ScoreRequest):
        return item
    if isinstance(item, Mapping):
        unknown = set(item) - set(_REQUEST_FIELDS)
        if unknown:
            raise TypeError(f"unknown ScoreRequest field(s): {', '.join(sorted(unknown))}")
        return make_request(**item)
    raise TypeError(f"expected a ScoreRequest or a mapping, got {type(item).__name__}")


def status_name(result: scorer_pb2.ScoreResult) -> str:
    """A result's status by name: 'OK', 'PARSE_FAILED', 'INVALID', 'ERROR', 'REFUSED' (or 'UNSPECIFIED')."""
    return statuses.status_name(result.status)


def pair_verdict_to_dict(verdict: scorer_pb2.PairVerdict) -> dict:
    """One pairwise question's verdict with its orders; absent probabilities are None."""
    opt = lambda msg, name: getattr(msg, name) if msg.HasField(name) else None  # noqa: E731
    return {
        "question": verdict.question,
        "winner": verdict.winner or None,
        "disagreement": verdict.disagreement,
        "rule": verdict.rule,
        "orders": [{"swapped": o.swapped, "winner": o.winner or None, "error": o.error,
                    "p_a": opt(o, "p_a"), "p_b": opt(o, "p_b"), "p_tie": opt(o, "p_tie"),
                    "raw_responses": list(o.raw_responses)} for o in verdict.orders],
    }


def result_to_dict(result: scorer_pb2.ScoreResult) -> dict:
    """A JSON-ready record of a result; absent optional scores are None, never a default. A pairwise
    protocol's result also has "pairwise": one verdict per question (pair_verdict_to_dict)."""
    record = {
        "sample_id": result.sample_id,
        "status": status_name(result),
        "score": result.score if result.HasField("score") else None,
        "sub_scores": {s.name: s.value for s in result.sub_scores},
        "expected_score": result.expected_score if result.HasField("expected_score") else None,
        "response": result.response,
        "raw_responses": list(result.raw_responses),
        "protocol": result.protocol,
        "protocol_hash": result.protocol_hash,
        "attempts": result.attempts,
        "batch_size": result.batch_size,
        "latency_s": result.latency_s,
        "error": result.error,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "served_model": result.served_model,
        "system_fingerprint": result.system_fingerprint,
    }
    if result.pairwise:
        record["pairwise"] = [pair_verdict_to_dict(v) for v in result.pairwise]
    return record


def info_to_dict(info: scorer_pb2.ScorerInfo) -> dict:
    return {
        "model": identity_from_proto(info.model),
        "protocols": {p.name: {"sha256": p.sha256, "description": p.description, "variables": list(p.variables)}
                      for p in info.protocols},
        "default_protocol": info.default_protocol,
        "max_batch_size": info.max_batch_size,
        "max_wait_s": info.max_wait_s,
        "batch_stats": {
            "batches": info.batch_stats.batches,
            "samples": info.batch_stats.samples,
            "batch_size_counts": dict(sorted(info.batch_stats.batch_size_counts.items())),
        },
        "max_message_bytes": info.max_message_bytes,
    }


class ScorerClient(ServiceClient):
    def __init__(
        self,
        address: str,
        tls: ClientTls | None = None,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        timeout: float | None = None,
    ):
        super().__init__(address, tls, max_message_bytes=max_message_bytes)
        self.timeout = timeout  # default per-call deadline (seconds); None: no deadline
        self.stub = scorer_pb2_grpc.ScorerStub(self.channel)

    def score(self, sample_id: str | scorer_pb2.ScoreRequest, *, timeout: float | None = None,
              **fields) -> scorer_pb2.ScoreResult:
        """Score one sample: pass a ScoreRequest, or a sample_id and the request's fields."""
        request = sample_id if isinstance(sample_id, scorer_pb2.ScoreRequest) else make_request(sample_id, **fields)
        with service_errors():
            return self.stub.Score(request, timeout=timeout or self.timeout)

    def score_many(self, requests: Iterable, *, timeout: float | None = None) -> Iterator[scorer_pb2.ScoreResult]:
        """Stream requests (ScoreRequest or mappings of its fields), read lazily; yield results
        as they finish, in any order, one per request, each tagged with its sample_id (cancel() ends it)."""
        return ServiceStream(self.stub.ScoreStream((_as_request(r) for r in requests), timeout=timeout or self.timeout))

    def info(self, *, timeout: float | None = 10.0) -> scorer_pb2.ScorerInfo:
        with service_errors():
            return self.stub.GetInfo(common_pb2.GetInfoRequest(), timeout=timeout)

    def wait_ready(self, timeout: float = 600.0) -> None:
        self.wait_serving(timeout)
