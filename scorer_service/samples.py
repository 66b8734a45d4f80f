"""What the judge is asked: requests validated into samples, samples into chat prompts, and the
outcome each sample gets. Plain data, no model and no gRPC (the server converts messages to and
from these; every backend reads the same prompts).

    sample = prepare(ScoreInput(...), registry)   # validation: raises InvalidInput naming the field
    prompts = build_prompts([sample, ...])        # one Prompt per (sample, question), in order
    conversation(prompts[0])                      # the chat messages (role/content parts) it stands for
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image

from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image

from suites.shared.protocol import Protocol, ProtocolRegistry, Question, nth_source, render
from editfleet_common.statuses import ERROR, INVALID, OK, PARSE_FAILED, REFUSED

DEFAULT_MAX_IMAGE_PIXELS = 40_000_000

STATUS_OK, STATUS_PARSE_FAILED, STATUS_INVALID, STATUS_ERROR, STATUS_REFUSED = OK, PARSE_FAILED, INVALID, ERROR, REFUSED


@dataclass
class ScoreInput:
    sample_id: str
    source_image: bytes = b""
    edited_image: bytes = b""
    instruction: str = ""
    category: str = ""
    protocol: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    more_source_images: list[bytes] = field(default_factory=list)  # inputs after source_image
    reference_images: list[bytes] = field(default_factory=list)


@dataclass
class PreparedSample:
    sample_id: str
    protocol: Protocol
    category: str
    variables: dict[str, str]
    images: dict[str, list[Image.Image]]  # IMAGE_ROLES -> images, in order (empty: none sent)
    questions: tuple[Question, ...] = ()  # the protocol's questions asked of this sample (`when`)


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
    # what an API endpoint reported (backend openai), summed over the sample's requests
    prompt_tokens: int = 0
    completion_tokens: int = 0
    served_model: str = ""          # the model the server says answered, as it names it
    system_fingerprint: str = ""


class Reply(str):
    """A reply text that also carries what an API endpoint said about it; a backend may return these
    instead of plain strings (add_usage sums them into the outcome)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    served_model: str = ""
    system_fingerprint: str = ""

    @classmethod
    def of(cls, text: str, *, prompt_tokens: int = 0, completion_tokens: int = 0, served_model: str = "",
           system_fingerprint: str = "") -> "Reply":
        reply = cls(text)
        reply.prompt_tokens, reply.completion_tokens = prompt_tokens, completion_tokens
        reply.served_model, reply.system_fingerprint = served_model, system_fingerprint
        return reply


class Refused(Exception):
    """The judge refused to answer a prompt (a refusal, a content filter): its sample is REFUSED with
    `reason`, never scored and never guessed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def add_usage(outcome: ScoreOutcome, replies) -> ScoreOutcome:
    """Sum the tokens, and collect the served models and fingerprints, of a sample's replies."""
    models, prints = [], []
    for reply in replies:
        outcome.prompt_tokens += getattr(reply, "prompt_tokens", 0)
        outcome.completion_tokens += getattr(reply, "completion_tokens", 0)
        for seen, value in ((models, getattr(reply, "served_model", "")), (prints, getattr(reply, "system_fingerprint", ""))):
            if value and value not in seen:
                seen.append(value)
    outcome.served_model, outcome.system_fingerprint = ",".join(models), ",".join(prints)
    return outcome


@dataclass
class Prompt:
    """One question of one sample, rendered: what a backend sends to its model."""

    sample_index: int  # index of the sample in the batch the prompts were built from
    protocol: Protocol
    question: Question
    system: str | None
    user: str
    images: list[Image.Image]
    captions: list[str] = field(default_factory=list)  # a text part before each image ("" for none)


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
    if inp.more_source_images and not inp.source_image:
        raise InvalidInput("more_source_images: given without source_image")
    present = {name for name, there in (("reference", inp.reference_images),
                                         ("more_sources", inp.more_source_images)) if there}
    protocol.check_variables(inp.category, variables, present)
    questions = tuple(protocol.asked(inp.category, variables, present))
    # every image that is sent is checked, even where the protocol does not show it
    decode = lambda data, name: decode_image(data, max_pixels=max_image_pixels, field=name)  # noqa: E731
    sources = ([decode(inp.source_image, "source_image")] if inp.source_image else []) + [
        decode(data, f"more_source_images[{i}]") for i, data in enumerate(inp.more_source_images)]
    edited = [decode(inp.edited_image, "edited_image")] if inp.edited_image else []
    references = [decode(data, f"reference_images[{i}]") for i, data in enumerate(inp.reference_images)]
    sources, edited, references = resize_images(sources, edited, references, protocol.resize)
    images = {"source": sources[:1], "sources": sources, "edited": edited, "reference": references}
    for question in questions:
        for role in question.images:
            k = nth_source(role)
            if k is not None:
                images[role] = sources[k - 1:k]
            if not images[role]:
                field_name = _ROLE_FIELDS.get(role) or f"more_source_images[{nth_source(role) - 2}]"
                raise InvalidInput(f"{field_name}: missing (protocol {protocol.name!r} shows it in "
                                   f"question {question.name!r})")
    return PreparedSample(inp.sample_id, protocol, inp.category, variables, images, questions)


_ROLE_FIELDS = {"source": "source_image", "sources": "source_image", "edited": "edited_image",
                "reference": "reference_images"}


def resize_images(sources: list[Image.Image], edited: list[Image.Image], references: list[Image.Image],
                  rule: dict) -> tuple[list[Image.Image], list[Image.Image], list[Image.Image]]:
    """The protocol's own resizing rule, before any backend sees the images (a local processor may
    resize further; an API gets them as they are here): `edited: source` gives the edited image the
    (first) source image's size (GEdit-Bench's scorer does so before judging), `max_pixels: N` scales
    each image down, aspect kept, to at most N pixels, `jpeg_thumbnail: N` fits each inside NxN and
    sends it through JPEG (RISEBench's image_size=N). PIL's default resampling (bicubic)."""
    if rule.get("edited") == "source" and sources and edited and edited[0].size != sources[0].size:
        edited = [edited[0].resize(sources[0].size)]
    limit = rule.get("max_pixels")
    if limit:
        def fit(img: Image.Image) -> Image.Image:
            w, h = img.size
            if w * h <= limit:
                return img
            scale = (limit / (w * h)) ** 0.5
            return img.resize((max(1, int(w * scale)), max(1, int(h * scale))))

        sources, edited, references = ([fit(i) for i in group] for group in (sources, edited, references))
    side = rule.get("jpeg_thumbnail")
    if side:
        sources, edited, references = ([_jpeg_thumbnail(i, side) for i in group] for group in (sources, edited, references))
    return sources, edited, references


def _jpeg_thumbnail(img: Image.Image, side: int) -> Image.Image:
    """`jpeg_thumbnail: N`: the image as RISEBench sends it (utils.encode_image_to_base64 with
    target_size=N): fitted inside NxN by PIL's img.thumbnail (aspect kept, never enlarged, its default
    filter), then through JPEG at PIL's default quality, and decoded again: the pixels the API sees."""
    img = img.copy()
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def build_prompts(samples: list[PreparedSample], strict: bool = False) -> list[Prompt]:
    """Every (sample, question asked of it) as one prompt, samples in order, questions in protocol order;
    strict: the protocol's stricter wording, for the re-ask."""
    prompts = []
    for i, sample in enumerate(samples):
        for question in sample.questions or sample.protocol.questions:
            system, user = sample.protocol.render_question(question, sample.category, sample.variables, strict=strict)
            images, captions = [], []
            for role, caption in zip(question.images, question.captions or [""] * len(question.images)):
                for n, img in enumerate(sample.images[role], start=1):
                    images.append(img)
                    captions.append(render(caption, {**sample.variables, "n": str(n)},
                                           where=f"protocol {sample.protocol.name!r}, question {question.name!r}, captions")
                                    if caption else "")
            prompts.append(Prompt(i, sample.protocol, question, system, user, images, captions))
    return prompts


def user_content(prompt: Prompt) -> list[tuple[str, object]]:
    """The user message in order, as ("text", str) and ("image", PIL image) parts: the prompt text and
    each image after its caption, the text first or last as the protocol says. Every backend builds
    its message from this."""
    parts: list[tuple[str, object]] = []
    for img, caption in zip(prompt.images, prompt.captions or [""] * len(prompt.images)):
        if caption:
            parts.append(("text", caption))
        parts.append(("image", img))
    text = ("text", prompt.user)
    return [text, *parts] if prompt.protocol.text_first else [*parts, text]


def conversation(prompt: Prompt) -> list[dict]:
    """The prompt as chat messages: an optional system text, then the user's images and text."""
    conv = []
    if prompt.system:
        conv.append({"role": "system", "content": [{"type": "text", "text": prompt.system}]})
    content = [{"type": "text", "text": value} if kind == "text" else {"type": "image", "image": value}
               for kind, value in user_content(prompt)]
    conv.append({"role": "user", "content": content})
    return conv


def error_outcome(sample: PreparedSample, exc: BaseException) -> ScoreOutcome:
    """A sample the judge failed on (status ERROR, the exception as the error), or refused (REFUSED,
    the judge's reason)."""
    if isinstance(exc, Refused):
        return ScoreOutcome(sample_id=sample.sample_id, status=STATUS_REFUSED, protocol=sample.protocol.name,
                            protocol_hash=sample.protocol.sha256, error=exc.reason, attempts=1)
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
    return prepare(ScoreInput("warm-up", image, image, "warm-up", "", protocol.name, variables,
                              reference_images=[image] if "reference" in protocol.images else []), registry)
