"""What the judge is asked: requests validated into samples, samples into chat prompts, and the
outcome each sample gets. Plain data, no model and no gRPC (the server converts messages to and
from these; every backend reads the same prompts).

    sample = prepare(ScoreInput(...), registry)   # validation: raises InvalidInput naming the field
    admitted = admit(ScoreInput(...), registry, limits)   # the server: every bound checked, nothing decoded
    sample = decode(admitted)                     # then only the images its questions show
    prompts = build_prompts([sample, ...])        # one Prompt per (sample, question), in order
    conversation(prompts[0])                      # the chat messages (role/content parts) it stands for
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image

from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image, header_size

from suites.shared.protocol import Protocol, ProtocolRegistry, Question, nth_reference, nth_source, render
from editfleet_common.statuses import ERROR, INVALID, OK, PARSE_FAILED, REFUSED

DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
# What a decoded image holds in memory per pixel: PIL keeps RGB as 4 bytes (RGBX)
DECODED_BYTES_PER_PIXEL = 4


@dataclass(frozen=True)
class Limits:
    """What one request may carry, checked before any image is decoded or any prompt built (the
    scorer's flags of the same names, scorer_service/guards.py). A request over one is refused with
    InvalidInput (INVALID_ARGUMENT) naming the field and the flag: never truncated, since the judge
    must see what the suite says."""

    max_text_chars: int = 16_384                  # instruction, each variable's value
    max_id_chars: int = 512                       # sample_id, protocol, category, each variable's name
    max_variables: int = 64                       # entries of ScoreRequest.variables
    max_images_per_role: int = 8                  # input images (source_image + more_source_images); reference_images
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS  # each image sent, from its header
    max_total_pixels: int = 100_000_000           # the images the sample's questions show, summed, from their headers

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
    edited_image_b: bytes = b""      # pairwise protocols: the second edit (role edited_b; edited_image is edited_a)
    questions: list[str] = field(default_factory=list)  # ask only these of the protocol's questions (empty: all)
    pair_orders: str = ""            # pairwise: "one", "both"; "": the protocol's own


@dataclass
class PreparedSample:
    sample_id: str
    protocol: Protocol
    category: str
    variables: dict[str, str]
    images: dict[str, list[Image.Image]]  # IMAGE_ROLES -> images, in order (empty: none sent or none shown)
    questions: tuple[Question, ...] = ()  # the protocol's questions asked of this sample (`when`)
    # pairwise protocols: the orders each question is asked in (False: as sent, True: A and B swapped)
    orders: tuple[bool, ...] = (False,)
    # the server's: called once when the sample leaves the server's hands (its memory budget back)
    release: Callable[[], None] | None = field(default=None, repr=False, compare=False)


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
    pairwise: list["PairVerdict"] = field(default_factory=list)  # pairwise protocols: one per question asked


@dataclass
class PairOrder:
    """One order a pairwise question was asked in, in the REQUEST's terms (A = edited_image)."""

    swapped: bool                    # edited_image_b was shown as "Image A"
    winner: str = ""                 # "A", "B", "tie"; "" when none was read
    error: str = ""                  # why none
    p_a: float | None = None         # from log-probabilities where the backend gives them
    p_b: float | None = None
    p_tie: float | None = None
    raw_responses: list[str] = field(default_factory=list)


@dataclass
class PairVerdict:
    question: str
    winner: str = ""                 # "A", "B", "tie" by the protocol's rule; "" no verdict
    disagreement: bool = False       # both orders read and they differ
    rule: str = ""                   # how the verdict came about
    orders: list[PairOrder] = field(default_factory=list)


class Expected(float):
    """An expected score that also carries the probability of each answer value (value -> probability,
    renormalised over the answers): what a pairwise question's P(A), P(B), P(tie) are read from.
    A backend may return these instead of plain floats."""

    probs: dict[float, float] = {}

    @classmethod
    def of(cls, value: float, probs: dict[float, float]) -> "Expected":
        out = cls(value)
        out.probs = dict(probs)
        return out


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
    swapped: bool = False  # a pairwise question asked with edited_b shown as "Image A" (and edited_a as "Image B")


@dataclass
class AdmittedSample:
    """A request that passed every check that needs no decoding (admit): what decode() makes a
    PreparedSample of, and what decoding it will hold in memory."""

    inp: ScoreInput
    protocol: Protocol
    variables: dict[str, str]
    questions: tuple[Question, ...]
    shown_sources: tuple[int, ...]   # indexes of the input images to decode (0: source_image)
    shown_edited: bool
    shown_references: bool
    pixels: int                      # of the images to decode, from their headers
    limits: Limits = field(default_factory=Limits)
    shown_edited_b: bool = False     # pairwise: the second edit is shown
    orders: tuple[bool, ...] = (False,)  # pairwise: the orders each question is asked in (True: swapped)

    @property
    def decoded_bytes(self) -> int:
        return self.pixels * DECODED_BYTES_PER_PIXEL


def prepare(inp: ScoreInput, registry: ProtocolRegistry, *, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
            limits: Limits | None = None, every_image: bool = True) -> PreparedSample:
    """Validate a request and decode its images; every problem is an InvalidInput naming it.
    every_image: decode the images no question shows as well (in-process callers that look at them;
    the server decodes only the shown ones)."""
    limits = limits or Limits(max_image_pixels=max_image_pixels)
    return decode(admit(inp, registry, limits), every_image=every_image)


def check_text(inp: ScoreInput, limits: Limits) -> None:
    """The request's text within its bounds, in characters (cheap: before anything else is looked at)."""
    def over(field_name: str, value: str, limit: int, flag: str) -> None:
        if len(value) > limit:
            raise InvalidInput(f"{field_name}: {len(value)} characters exceed the limit of {limit} ({flag})")

    over("sample_id", inp.sample_id, limits.max_id_chars, "--max-id-chars")
    over("protocol", inp.protocol, limits.max_id_chars, "--max-id-chars")
    over("category", inp.category, limits.max_id_chars, "--max-id-chars")
    over("instruction", inp.instruction, limits.max_text_chars, "--max-text-chars")
    if len(inp.variables) > limits.max_variables:
        raise InvalidInput(f"variables: {len(inp.variables)} entries exceed the limit of {limits.max_variables} "
                           "(--max-variables)")
    for name, value in inp.variables.items():
        if len(name) > limits.max_id_chars:
            raise InvalidInput(f"variables: a name of {len(name)} characters ({name[:32]!r}...) exceeds the limit "
                               f"of {limits.max_id_chars} (--max-id-chars)")
        over(f"variables[{name!r}]", value, limits.max_text_chars, "--max-text-chars")


def check_image_counts(inp: ScoreInput, limits: Limits) -> None:
    inputs = (1 if inp.source_image else 0) + len(inp.more_source_images)
    if inputs > limits.max_images_per_role:
        raise InvalidInput(f"more_source_images: {inputs} input images (source_image + {len(inp.more_source_images)}) "
                           f"exceed the limit of {limits.max_images_per_role} (--max-images-per-role)")
    if len(inp.reference_images) > limits.max_images_per_role:
        raise InvalidInput(f"reference_images: {len(inp.reference_images)} images exceed the limit of "
                           f"{limits.max_images_per_role} (--max-images-per-role)")


def image_size(data: bytes, *, max_pixels: int, field: str) -> tuple[int, int]:
    """An encoded image's size as its header says (before any EXIF rotation), refusing what cannot be
    read, a zero size and more than `max_pixels` (--max-input-pixels), as decode_image does before
    decoding (the same check: editfleet_common.images.header_size). No pixel data is decoded."""
    return header_size(data, max_pixels=max_pixels, field=field)


def admit(inp: ScoreInput, registry: ProtocolRegistry, limits: Limits | None = None) -> AdmittedSample:
    """Every check that needs no decoding, cheapest first: text lengths, the protocol and its
    variables, image counts, then every image's header (size, pixel bound), and the pixels of the
    images the sample's questions show, in total. Raises InvalidInput naming the field."""
    limits = limits or Limits()
    check_text(inp, limits)
    if not inp.sample_id:
        raise InvalidInput("sample_id is empty")
    protocol = registry.get(inp.protocol)
    variables = dict(inp.variables)
    if inp.instruction.strip():  # a blank instruction is a missing one (not judged as "   ")
        if variables.get("edit_instruction", inp.instruction) != inp.instruction:
            raise InvalidInput("instruction and variables['edit_instruction'] disagree")
        variables["edit_instruction"] = inp.instruction
    variables.setdefault("category", inp.category)
    orders = pair_orders(protocol, inp.pair_orders)
    if inp.more_source_images and not inp.source_image:
        raise InvalidInput("more_source_images: given without source_image")
    check_image_counts(inp, limits)
    present = {name for name, there in (("reference", inp.reference_images),
                                         ("more_sources", inp.more_source_images),
                                         ("pair", inp.edited_image and inp.edited_image_b)) if there}
    questions = asked_questions(protocol, inp, variables, present)
    sources = ([inp.source_image] if inp.source_image else []) + list(inp.more_source_images)
    for question in questions:  # a question that shows a role the request lacks
        for role in question.images:
            k, r = nth_source(role), nth_reference(role)
            if r is not None:  # reference_<k>: the k-th reference image
                if len(inp.reference_images) < r:
                    raise InvalidInput(f"reference_images[{r - 1}]: missing (protocol {protocol.name!r} shows it in "
                                       f"question {question.name!r})")
                continue
            there = len(sources) >= k if k is not None else {
                "source": sources, "sources": sources, "edited": inp.edited_image, "reference": inp.reference_images,
                "edited_a": inp.edited_image, "edited_b": inp.edited_image_b}[role]
            if not there:
                field_name = _ROLE_FIELDS.get(role) or f"more_source_images[{k - 2}]"
                raise InvalidInput(f"{field_name}: missing (protocol {protocol.name!r} shows it in "
                                   f"question {question.name!r})")
    # every image sent is checked from its header (readable, within --max-input-pixels), shown or not
    size = lambda data, name: image_size(data, max_pixels=limits.max_image_pixels, field=name)  # noqa: E731
    source_sizes = [size(data, _source_field(i)) for i, data in enumerate(sources)]
    edited_size = size(inp.edited_image, "edited_image") if inp.edited_image else None
    edited_b_size = size(inp.edited_image_b, "edited_image_b") if inp.edited_image_b else None
    reference_sizes = [size(data, f"reference_images[{i}]") for i, data in enumerate(inp.reference_images)]
    roles = {role for question in questions for role in question.images}
    shown_edited = bool(roles & {"edited", "edited_a"}) and edited_size is not None
    shown_edited_b = "edited_b" in roles and edited_b_size is not None
    # the first input is decoded where shown, and where the edited image is resized to its size
    first = "source" in roles or (shown_edited and protocol.resize.get("edited") == "source")
    if "sources" in roles:
        shown_sources = tuple(range(len(sources)))
    else:
        shown_sources = tuple(sorted({0 for _ in sources[:1] if first}
                                     | {k - 1 for k in map(nth_source, roles) if k is not None}))
    shown_references = "reference" in roles or any(nth_reference(role) for role in roles)
    pixels = [source_sizes[i] for i in shown_sources] + ([edited_size] if shown_edited else []) + (
        [edited_b_size] if shown_edited_b else []) + (reference_sizes if shown_references else [])
    total = sum(w * h for w, h in pixels)
    if total > limits.max_total_pixels:
        raise InvalidInput(f"images: the {len(pixels)} image(s) the protocol shows hold {total} pixels, over the "
                           f"limit of {limits.max_total_pixels} per request (--max-total-pixels)")
    return AdmittedSample(inp, protocol, variables, questions, shown_sources, shown_edited, shown_references,
                          total, limits, shown_edited_b, orders if protocol.pairwise else (False,))


def pair_orders(protocol: Protocol, asked: str) -> tuple[bool, ...]:
    """The orders a pairwise protocol's questions are asked in: (as sent,) or (as sent, swapped).
    asked: the request's pair_orders ("" for the protocol's own)."""
    if asked not in ("", "one", "both"):
        raise InvalidInput(f"pair_orders: {asked!r} is not one or both (or empty: the protocol's own)")
    if asked and not protocol.pairwise:
        raise InvalidInput(f"pair_orders: protocol {protocol.name!r} is not pairwise")
    orders = asked or (protocol.pairwise or {}).get("orders", "both")
    return (False, True) if orders == "both" else (False,)


def asked_questions(protocol: Protocol, inp: ScoreInput, variables: dict[str, str], present) -> tuple[Question, ...]:
    """The questions asked of a request: those its protocol's `when` selects, narrowed to the request's
    `questions` where it names some (each must be one of the protocol's)."""
    if inp.questions:
        names = [q.name for q in protocol.questions]
        unknown = [q for q in inp.questions if q not in names]
        if unknown:
            raise InvalidInput(f"questions: {', '.join(map(repr, unknown))} not in protocol {protocol.name!r} "
                               f"(it asks: {', '.join(names)})")
    protocol.check_variables(inp.category, variables, present, only=inp.questions or None)
    questions = [q for q in protocol.asked(inp.category, variables, present, only=inp.questions or None)]
    return tuple(questions)


def _source_field(index: int) -> str:
    return "source_image" if index == 0 else f"more_source_images[{index - 1}]"


def decode(admitted: AdmittedSample, *, every_image: bool = False) -> PreparedSample:
    """The sample with its images decoded (only those its questions show unless every_image) and
    resized by the protocol's rule."""
    inp, protocol, limit = admitted.inp, admitted.protocol, admitted.limits.max_image_pixels
    decode_one = lambda data, name: decode_image(data, max_pixels=limit, field=name)  # noqa: E731
    sent = ([inp.source_image] if inp.source_image else []) + list(inp.more_source_images)
    wanted = range(len(sent)) if every_image else admitted.shown_sources
    sources: list[Image.Image | None] = [decode_one(data, _source_field(i)) if i in wanted else None
                                         for i, data in enumerate(sent)]
    edited = ([decode_one(inp.edited_image, "edited_image")]
              if inp.edited_image and (every_image or admitted.shown_edited) else [])
    edited_b = ([decode_one(inp.edited_image_b, "edited_image_b")]
                if inp.edited_image_b and (every_image or admitted.shown_edited_b) else [])
    references = ([decode_one(data, f"reference_images[{i}]") for i, data in enumerate(inp.reference_images)]
                  if every_image or admitted.shown_references else [])
    decoded = [img for img in sources if img is not None]
    decoded, both, references = resize_images(
        decoded, edited + edited_b, references, protocol.resize,
        source_size=sources[0].size if sources and sources[0] is not None else None)
    edited, edited_b = both[:len(edited)], both[len(edited):]
    resized = iter(decoded)
    sources = [next(resized) if img is not None else None for img in sources]
    images: dict[str, list[Image.Image]] = {
        "source": [img for img in sources[:1] if img is not None],
        "sources": sources if sources and all(img is not None for img in sources) else [],
        "edited": edited, "reference": references, "edited_a": edited, "edited_b": edited_b}
    for question in admitted.questions:
        for role in question.images:
            k, r = nth_source(role), nth_reference(role)
            if k is not None:
                images[role] = sources[k - 1:k]
            if r is not None:
                images[role] = references[r - 1:r]
    return PreparedSample(inp.sample_id, protocol, inp.category, admitted.variables, images, admitted.questions,
                          admitted.orders)


_ROLE_FIELDS = {"source": "source_image", "sources": "source_image", "edited": "edited_image",
                "reference": "reference_images", "edited_a": "edited_image", "edited_b": "edited_image_b"}


def resize_images(sources: list[Image.Image], edited: list[Image.Image], references: list[Image.Image],
                  rule: dict, *, source_size: tuple[int, int] | None = None
                  ) -> tuple[list[Image.Image], list[Image.Image], list[Image.Image]]:
    """The protocol's own resizing rule, before any backend sees the images (a local processor may
    resize further; an API gets them as they are here): `edited: source` gives the edited image the
    (first) source image's size (GEdit-Bench's scorer does so before judging), `max_pixels: N` scales
    each image down, aspect kept, to at most N pixels, `jpeg_thumbnail: N` fits each inside NxN and
    sends it through JPEG (RISEBench's image_size=N); `sources_max_pixels: N` and `sources_multiple_of:
    M` resize the input images only, as OmniContext's test_omnicontext_score.py does (scaled by
    sqrt(N / pixels) where over N, each side truncated; then each side floored to a multiple of M, at
    least M), and `jpeg: true` sends every image through JPEG at PIL's default quality (its
    openai_util.encode_pil_image). PIL's default resampling (bicubic).
    source_size: the first input image's size where `sources` need not start with it (only the
    shown inputs decoded)."""
    target = source_size or (sources[0].size if sources else None)
    if rule.get("edited") == "source" and target and edited:
        edited = [img if img.size == target else img.resize(target) for img in edited]
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
    if rule.get("sources_max_pixels") or rule.get("sources_multiple_of"):
        sources = [_fit_source(img, rule.get("sources_max_pixels"), rule.get("sources_multiple_of") or 1) for img in sources]
    if rule.get("jpeg"):
        sources, edited, references = ([_through_jpeg(i) for i in group] for group in (sources, edited, references))
    return sources, edited, references


def _fit_source(img: Image.Image, limit: int | None, multiple: int) -> Image.Image:
    """An input image as OmniContext's scorer resizes it: over `limit` pixels, scaled by sqrt(limit /
    pixels) (each side truncated); then each side floored to a multiple of `multiple` (never below it)."""
    w, h = img.size
    if limit and w * h > limit:
        ratio = math.sqrt(limit / (w * h))
        w, h = int(w * ratio), int(h * ratio)
    size = (max(multiple, w // multiple * multiple), max(multiple, h // multiple * multiple))
    return img if size == img.size else img.resize(size)


def _through_jpeg(img: Image.Image) -> Image.Image:
    """`jpeg: true`: the pixels an API sees of an image sent as JPEG at PIL's default quality."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG")
    buf.seek(0)
    return Image.open(buf).convert("RGB")


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
            # a pairwise question once per order: swapped, edited_b is shown where the protocol says Image A
            for swapped in (sample.orders if question.answer == "pairwise" else (False,)):
                images, captions = [], []
                for role, caption in zip(question.images, question.captions or [""] * len(question.images)):
                    if swapped and role in _SWAP:
                        role = _SWAP[role]
                    for n, img in enumerate(sample.images[role], start=1):
                        images.append(img)
                        captions.append(render(caption, {**sample.variables, "n": str(n)},
                                               where=f"protocol {sample.protocol.name!r}, question {question.name!r}, captions")
                                        if caption else "")
                prompts.append(Prompt(i, sample.protocol, question, system, user, images, captions, swapped))
    return prompts


_SWAP = {"edited_a": "edited_b", "edited_b": "edited_a"}


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
                              reference_images=[image] if "reference" in protocol.images else [],
                              edited_image_b=image if protocol.pairwise else b""), registry)
