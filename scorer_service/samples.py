"""What the judge is asked: requests validated into samples, samples into chat prompts, and the
outcome each sample gets. Plain data, no model and no gRPC (the server converts messages to and
from these; every backend reads the same prompts).

    sample = prepare(ScoreInput(...), registry)   # validation: raises InvalidInput naming the field
    prompts = build_prompts([sample, ...])        # one Prompt per (sample, question), in order
    conversation(prompts[0])                      # the chat messages (role/content parts) it stands for
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image

from .protocol import Protocol, ProtocolRegistry, Question
from .statuses import ERROR, INVALID, OK, PARSE_FAILED

DEFAULT_MAX_IMAGE_PIXELS = 40_000_000

STATUS_OK, STATUS_PARSE_FAILED, STATUS_INVALID, STATUS_ERROR = OK, PARSE_FAILED, INVALID, ERROR


@dataclass
class ScoreInput:
    sample_id: str
    source_image: bytes = b""
    edited_image: bytes = b""
    instruction: str = ""
    category: str = ""
    protocol: str = ""
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class PreparedSample:
    sample_id: str
    protocol: Protocol
    category: str
    variables: dict[str, str]
    images: dict[str, Image.Image]


@dataclass
class ScoreOutcome:
    sample_id: str
    status: str
    protocol: str = ""
    protocol_hash: str = ""
    score: float | None = None
    sub_scores: list[tuple[str, float]] = field(default_factory=list)
    expected_score: float | None = None
    response: str = ""
    raw_responses: list[str] = field(default_factory=list)
    attempts: int = 0
    error: str = ""
    batch_size: int = 0
    latency_s: float = 0.0


@dataclass
class Prompt:
    """One question of one sample, rendered: what a backend sends to its model."""

    sample_index: int  # index of the sample in the batch the prompts were built from
    protocol: Protocol
    question: Question
    system: str | None
    user: str
    images: list[Image.Image]


def prepare(inp: ScoreInput, registry: ProtocolRegistry, *, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> PreparedSample:
    """Validate a request and decode its images; every problem is an InvalidInput naming it."""
    if not inp.sample_id:
        raise InvalidInput("sample_id is empty")
    protocol = registry.get(inp.protocol)
    variables = dict(inp.variables)
    if inp.instruction.strip():  # a blank instruction is a missing one (not judged as "   ")
        if variables.get("edit_instruction", inp.instruction) != inp.instruction:
            raise InvalidInput("instruction and variables['edit_instruction'] disagree")
        variables["edit_instruction"] = inp.instruction
    variables.setdefault("category", inp.category)
    protocol.check_variables(inp.category, variables)

    images: dict[str, Image.Image] = {}
    given = {"source": inp.source_image, "edited": inp.edited_image}
    for role in protocol.images:
        if not given[role]:
            raise InvalidInput(f"{role}_image: missing (protocol {protocol.name!r} needs it)")
    for role, data in given.items():
        if data:  # an image that is sent is checked even where the protocol does not show it
            images[role] = decode_image(data, max_pixels=max_image_pixels, field=f"{role}_image")
    return PreparedSample(inp.sample_id, protocol, inp.category, variables, images)


def build_prompts(samples: list[PreparedSample], strict: bool = False) -> list[Prompt]:
    """Every (sample, question) as one prompt, samples in order, questions in protocol order;
    strict: the protocol's stricter wording, for the re-ask."""
    prompts = []
    for i, sample in enumerate(samples):
        for question in sample.protocol.questions:
            system, user = sample.protocol.render_question(question, sample.category, sample.variables, strict=strict)
            prompts.append(Prompt(i, sample.protocol, question, system, user,
                                  [sample.images[r] for r in question.images]))
    return prompts


def conversation(prompt: Prompt) -> list[dict]:
    """The prompt as chat messages: an optional system text, then the user's images and text."""
    conv = []
    if prompt.system:
        conv.append({"role": "system", "content": [{"type": "text", "text": prompt.system}]})
    content = [{"type": "image", "image": img} for img in prompt.images]
    content.append({"type": "text", "text": prompt.user})
    conv.append({"role": "user", "content": content})
    return conv


def error_outcome(sample: PreparedSample, exc: BaseException) -> ScoreOutcome:
    """A sample the judge failed on (status ERROR, the exception as the error)."""
    return ScoreOutcome(
        sample_id=sample.sample_id, status=STATUS_ERROR, protocol=sample.protocol.name,
        protocol_hash=sample.protocol.sha256, error=f"{type(exc).__name__}: {exc}",
    )


def warmup_sample(registry: ProtocolRegistry) -> PreparedSample:
    """A small synthetic sample of the default protocol: the whole path of a batch (processor,
    generation, expected score) for a warm-up."""
    from editfleet_common.images import encode_png

    protocol = registry.get("")
    variables = {name: "warm-up" for name in protocol.variables}
    image = encode_png(Image.new("RGB", (64, 64), (128, 128, 128)))
    return prepare(ScoreInput("warm-up", image, image, "warm-up", "", protocol.name, variables), registry)
