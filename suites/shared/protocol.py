"""Judge protocols: data files (YAML or JSON) that say what to ask the judge and how to combine
the answers. A suite's protocol files lie in its folder (suites/<name>/, declared in its Suite), others
in a directory given to the scorer with `--protocols-dir`; the file's name (without extension) is the
protocol's name. Results record the
name and the sha256 of the file's text, so a score can always be traced to the exact prompts.

File format (see suites/seed/seed-0-10.yaml and suites/gedit/viescore.yaml):

    name: my-protocol                # must equal the file name
    description: one line
    range: [0, 10]                   # every score the judge gives must lie in this closed range
    combine: single                  # how question scores become the headline (a Rule: combine.py)
    category_aliases: {物理: physical}
    strict_suffix: "..."             # appended to the user text when re-asking after a parse failure
    resize: {edited: source}         # optional: the judge sees the edited image at the source's size;
                                     # max_pixels: N scales every image down to at most N pixels;
                                     # jpeg_thumbnail: N fits every image inside NxN, through JPEG;
                                     # sources_max_pixels: N / sources_multiple_of: M the input images
                                     # only (at most N pixels, then each side floored to a multiple
                                     # of M); jpeg: true every image through JPEG (PIL's default quality)
    parse: json                      # optional: json (default, parsing.parse_reply) or another of
                                     # parsing.PARSERS (labelled-lines, yes-no, final-score, ...)
    text_first: false                # optional: the prompt text before the images (ImgEdit's order)
    max_new_tokens: 1000             # optional: the suite's own reply budget (its scripts' max_tokens)
    pairwise: {orders: both, disagreement: tie}   # with `answer: pairwise` questions (below): ask each
                                     # question in both orders (A/B swapped too) or `one`; where both are
                                     # read and differ, the verdict is a tie or `none` (no verdict)
    questions:                       # one judge call each, in this order
      score:
        images: [edited]             # which request images, in order (IMAGE_ROLES): source (the first
                                     # input), sources (every input), edited, reference (the suite's),
                                     # source_<k> (the k-th input, k >= 2); edited_a, edited_b (the two
                                     # edits of a pairwise question: edited_image, edited_image_b);
                                     # reference_<k> (the k-th reference image alone, k >= 1)
        captions: ["Image {n}:"]     # optional, one per `images` entry: a text part before each of its
                                     # images ({n}: the image's 1-based place in its role; variables too)
        scores: [score]              # names of the numbers the reply must contain, in order
        expected_score_prefix: '{"score": '   # optional, only with one score: see expected_score.py
        system: "..."                # optional; a string or {category: text, default: text}
        user: "..."                  # a string or {category: text, default: text}
        parse: json                  # optional: this question's parser (else the protocol's)
        answer: number               # optional: number (default) or yes-no (one score: yes 1, no 0;
                                     # parsed with `yes-no` unless `parse` says otherwise) or pairwise
                                     # (which of edited_a / edited_b wins: "Image A" 1, "Image B" 0, "Tie"
                                     # 0.5 as shown; parsed with `pairwise`; every question of the
                                     # protocol pairwise, each showing edited_a and edited_b)
        when: {categories: [a, b]}   # optional: ask it only of samples where every key holds:
                                     # categories / not_categories: [...] (raw or aliased category),
                                     # equals / not_equals: {variable: value} (missing = ""),
                                     # has / lacks: [reference | more_sources | a variable name]
        better: lower                # optional: higher (default) or lower: which way its number is
                                     # better (a distance: lower); see "Direction" below
        label: L1                    # optional: its name in tables and console lines (default: its name)

Direction (`better:`): whether a higher or a lower number is the better one is declared here, per
question, and not in the Suite, because a score is what a protocol's questions produce: the same
suite's data judged with another protocol (MagicBrush's edits with a VLM protocol) gives numbers of
another kind, and one protocol (a lab's own, from --protocols-dir) may judge any suite's data. A
run's `score` is its protocol's headline, so its direction is the protocol's (`Protocol.better`):
the combine rule says which question's number the headline is (Rule.better: `single` and `metrics`
take the first question's); a rule that mixes several questions into one number has no direction
but "higher", and a `better: lower` question under it is refused at load. Every sub-score (a
question's number) keeps its own question's direction; compare ranks and report tables show each
number with it ("L1 ↓", "CLIP-I ↑": `Question.shown`).

Templates use `{name}` placeholders (identifier names only, so literal JSON braces such as
`{"score": 7}` need no escaping). Every request supplies `edit_instruction` (ScoreRequest.instruction)
and `category`; other names come from ScoreRequest.variables. A missing one is an InvalidInput
naming it (only the questions asked of a sample count). The combining rules: combine.py and the suites' own. This module imports no torch: the orchestrator may read protocols too.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common.errors import InvalidInput

from .combine import Rule
from .parsing import PARSERS

IMAGE_ROLES = ("source", "sources", "edited", "reference", "edited_a", "edited_b")
_NTH_SOURCE = re.compile(r"source_([2-9]|[1-9][0-9]+)")  # source_<k>: the k-th input image alone
_NTH_REFERENCE = re.compile(r"reference_([1-9][0-9]*)")  # reference_<k>: the k-th reference image alone
RESIZE_KEYS = ("edited", "max_pixels", "jpeg_thumbnail", "sources_max_pixels", "sources_multiple_of", "jpeg")
ANSWERS = ("number", "yes-no", "pairwise")
BETTER = ("higher", "lower")        # a question's `better:` (which way its number is better)
ARROWS = {"higher": "\u2191", "lower": "\u2193"}  # ↑ ↓, beside a number's name
PAIR_ORDERS = ("one", "both")       # a pairwise protocol's `pairwise.orders`
DISAGREEMENT = ("tie", "none")      # and `pairwise.disagreement`
WHEN_KEYS = ("categories", "not_categories", "equals", "not_equals", "has", "lacks")
PRESENCE = ("reference", "more_sources", "pair")  # what `has`/`lacks` may name besides variables
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_EXTENSIONS = (".yaml", ".yml", ".json")


class ProtocolError(ValueError):
    """A protocol file is malformed (raised at load time, naming the file)."""


def image_role_ok(role: str) -> bool:
    return role in IMAGE_ROLES or bool(_NTH_SOURCE.fullmatch(role)) or bool(_NTH_REFERENCE.fullmatch(role))


def nth_source(role: str) -> int | None:
    """k for a `source_<k>` role, else None."""
    m = _NTH_SOURCE.fullmatch(role)
    return int(m.group(1)) if m else None


def nth_reference(role: str) -> int | None:
    """k for a `reference_<k>` role, else None."""
    m = _NTH_REFERENCE.fullmatch(role)
    return int(m.group(1)) if m else None


def template_variables(text: str) -> list[str]:
    return sorted(set(_PLACEHOLDER.findall(text)))


def render(text: str, variables: dict[str, str], *, where: str) -> str:
    missing = [name for name in template_variables(text) if name not in variables]
    if missing:
        raise InvalidInput(f"{where}: missing template variable(s): {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: str(variables[m.group(1)]), text)




@dataclass(frozen=True)
class Question:
    name: str
    images: tuple[str, ...]
    scores: tuple[str, ...]
    system: dict[str, str]  # category -> text ("default" as fallback); empty: no system message
    user: dict[str, str]
    expected_score_prefix: str | None = None
    parse: str | None = None   # this question's parser; None: the protocol's (or yes-no for yes-no answers)
    answer: str = "number"     # ANSWERS
    when: dict = field(default_factory=dict)  # WHEN_KEYS -> condition; empty: always asked
    captions: tuple[str, ...] = ()  # one per `images` entry (templates, {n} = place in role); empty: none
    better: str = "higher"     # BETTER: which way its number is better (module docstring, "Direction")
    label: str = ""            # its name in tables and console lines; "": its name

    @property
    def shown(self) -> str:
        """Its number's name with its direction: "L1 \u2193", "SC \u2191"."""
        return f"{self.label or self.name} {ARROWS[self.better]}"


@dataclass(frozen=True)
class Protocol:
    name: str
    sha256: str
    path: str
    description: str
    low: float
    high: float
    combine: str
    strict_suffix: str
    questions: tuple[Question, ...]
    category_aliases: dict[str, str] = field(default_factory=dict)
    resize: dict = field(default_factory=dict)  # {"edited": "source"}, {"max_pixels": N}, {"jpeg_thumbnail": N}: samples.resize_images
    parse: str = "json"        # how replies are read: parsing.PARSERS
    text_first: bool = False   # the prompt text before the images in the user message
    max_new_tokens: int | None = None  # the suite's reply budget; None: the server's --max-new-tokens
    # pairwise protocols ({"orders": "one"|"both", "disagreement": "tie"|"none"}); empty: not pairwise
    pairwise: dict = field(default_factory=dict)
    rule: Rule | None = field(default=None, compare=False, repr=False)  # its `combine:` rule's functions

    @property
    def variables(self) -> list[str]:
        names: set[str] = set()
        for q in self.questions:
            for text in [*q.system.values(), *q.user.values()]:
                names.update(template_variables(text))
        return sorted(names)

    @property
    def images(self) -> list[str]:
        return [role for role in IMAGE_ROLES if any(role in q.images for q in self.questions)]

    @property
    def categories(self) -> list[str]:
        keys: set[str] = set()
        for q in self.questions:
            keys.update(q.system)
            keys.update(q.user)
        return sorted(keys)

    def resolve_category(self, category: str) -> str:
        """The prompt key for a request's category: itself, an alias, or 'default'."""
        known = set(self.categories)
        for candidate in (category, self.category_aliases.get(category), category.lower(),
                          self.category_aliases.get(category.lower())):
            if candidate and candidate in known:
                return candidate
        if "default" in known:
            return "default"
        raise InvalidInput(
            f"protocol {self.name!r} has no prompt for category {category!r} and no default; "
            f"known: {', '.join(sorted(known | set(self.category_aliases)))}"
        )

    @property
    def better(self) -> str:
        """Which way its headline score (a result's `score`) is better: its combine rule's word (Rule.better),
        else "higher" (see the module docstring, "Direction")."""
        return self.rule.better(self) if self.rule is not None and self.rule.better is not None else "higher"

    @property
    def score_label(self) -> str:
        """The headline score's name: the question it is (a rule with Rule.better), else "score"."""
        if self.rule is not None and self.rule.better is not None:
            first = self.questions[0]
            return first.label or first.name
        return "score"

    def combine_scores(self, scores: dict[str, list[float]]) -> tuple[float, list[tuple[str, float]]]:
        return self.rule.combine(self, scores)

    def parser_name(self, question: Question) -> str:
        """The parser a question's replies go through (parsing.PARSERS)."""
        if question.parse:
            return question.parse
        if question.answer in ("yes-no", "pairwise"):
            return question.answer
        return self.parse

    def _category_in(self, category: str, names) -> bool:
        candidates = {category, self.category_aliases.get(category), category.lower(),
                      self.category_aliases.get(category.lower())}
        return bool(candidates & set(names))

    def asks(self, question: Question, category: str, variables: dict[str, str],
             present: frozenset[str] | set[str] = frozenset()) -> bool:
        """Whether `question` is asked of a sample (its `when`); present: PRESENCE names the sample has."""
        when = question.when
        if "categories" in when and not self._category_in(category, when["categories"]):
            return False
        if "not_categories" in when and self._category_in(category, when["not_categories"]):
            return False
        if any(str(variables.get(k, "")) != v for k, v in when.get("equals", {}).items()):
            return False
        if any(str(variables.get(k, "")) == v for k, v in when.get("not_equals", {}).items()):
            return False
        has = lambda name: name in present if name in PRESENCE else bool(str(variables.get(name, "")))  # noqa: E731
        if not all(has(n) for n in when.get("has", ())):
            return False
        return not any(has(n) for n in when.get("lacks", ()))

    def asked(self, category: str, variables: dict[str, str],
              present: frozenset[str] | set[str] = frozenset(), only=None) -> list[Question]:
        """The questions asked of a sample, in protocol order; none is an InvalidInput. only: names to
        keep (a request asking some of the questions); None: all."""
        questions = [q for q in self.questions if self.asks(q, category, variables, present)
                     and (only is None or q.name in only)]
        if not questions:
            raise InvalidInput(f"protocol {self.name!r}: no question applies to this sample "
                               f"(category {category!r}; see the questions' `when`)")
        return questions

    def render_question(self, question: Question, category: str, variables: dict[str, str],
                        *, strict: bool = False) -> tuple[str | None, str]:
        """(system text or None, user text) for one question, with the strict suffix when re-asking."""
        key = self.resolve_category(category)
        where = f"protocol {self.name!r}, question {question.name!r}"
        system = None
        if question.system:
            text = question.system.get(key, question.system.get("default"))
            system = render(text, variables, where=where) if text is not None else None
        user_text = question.user.get(key, question.user.get("default"))
        if user_text is None:
            raise InvalidInput(f"{where}: no user prompt for category {category!r}")
        user = render(user_text, variables, where=where)
        if strict and self.strict_suffix:
            user = user.rstrip() + "\n\n" + self.strict_suffix.strip()
        return system, user

    def check_variables(self, category: str, variables: dict[str, str],
                        present: frozenset[str] | set[str] = frozenset(), only=None) -> None:
        """Fail early, naming every missing variable across the questions asked of the sample."""
        key = self.resolve_category(category)
        needed: set[str] = set()
        for q in self.asked(category, variables, present, only):
            for table in (q.system, q.user):
                text = table.get(key, table.get("default"))
                if text:
                    needed.update(template_variables(text))
            for caption in q.captions:
                needed.update(set(template_variables(caption)) - {"n"})
        missing = sorted(n for n in needed if n not in variables)
        if missing:
            raise InvalidInput(
                f"protocol {self.name!r} (category {category!r}): missing template variable(s): "
                f"{', '.join(missing)}"
            )


    def unmet(self, category: str, variables: dict[str, str], present: frozenset[str] | set[str],
              sources: int) -> str | None:
        """What keeps a sample from being judged with this protocol, before any image is sent: a
        category without a prompt, a template variable it lacks, an image a question it is asked
        shows that it has not (sources: its input images' count; present: the PRESENCE names it has);
        None where nothing does."""
        try:
            self.check_variables(category, variables, present)
            questions = self.asked(category, variables, present)
        except InvalidInput as exc:
            return str(exc)
        if self.pairwise and "pair" not in present:
            return (f"protocol {self.name!r} is pairwise: it judges two edits of a sample against each other "
                    "(rank runs with `orchestrator arena RUN_DIR...`)")
        for question in questions:
            for role in question.images:
                k = nth_source(role)
                there = sources >= k if k is not None else (
                    "reference" in present if role == "reference" or nth_reference(role) else
                    "pair" in present if role in ("edited_a", "edited_b") else role == "edited" or sources > 0)
                if not there:
                    return (f"protocol {self.name!r} shows the {role} image in question {question.name!r}, "
                            "which the sample has not")
        return None


def _prompt_table(value, *, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"default": value}
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    raise ProtocolError(f"{where}: expected a string or a mapping category -> string")


MAX_PROTOCOL_CHARS = 1 << 20  # a protocol file's text (the largest shipped one: ~35 KB); YAML aliases: safe_yaml's bounds


def parse_protocol(text: str, path: Path, rules: dict[str, Rule]) -> Protocol:
    """rules: the combine rules it may name (suites.protocols passes the catalog's)."""
    where = str(path)
    try:
        from editfleet_common import safe_yaml  # size, expanded aliases and nesting bounded

        if len(text) > MAX_PROTOCOL_CHARS:
            raise safe_yaml.YamlLimitError(f"{len(text)} characters, over the limit of {MAX_PROTOCOL_CHARS}")
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            data = safe_yaml.safe_load(text, max_bytes=MAX_PROTOCOL_CHARS * 4)
    except Exception as exc:  # noqa: BLE001 - any syntax error becomes a named ProtocolError
        raise ProtocolError(f"{where}: cannot parse: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{where}: top level must be a mapping")
    name = data.get("name")
    if name != path.stem:
        raise ProtocolError(f"{where}: name {name!r} must equal the file name {path.stem!r}")
    try:
        low, high = (float(x) for x in data.get("range", [0, 10]))
    except (TypeError, ValueError):
        raise ProtocolError(f"{where}: range must be [low, high]") from None
    combine = data.get("combine", "single")
    if combine not in rules:
        raise ProtocolError(f"{where}: unknown combine {combine!r}; known: {', '.join(rules)}")
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, dict) or not raw_questions:
        raise ProtocolError(f"{where}: questions must be a non-empty mapping")
    questions = []
    for qname, q in raw_questions.items():
        qwhere = f"{where}: question {qname!r}"
        if not isinstance(q, dict):
            raise ProtocolError(f"{qwhere}: must be a mapping")
        images = tuple(q.get("images", ["edited"]))
        bad = [r for r in images if not image_role_ok(r)]
        if bad or not images:
            raise ProtocolError(f"{qwhere}: images must be a non-empty list of {IMAGE_ROLES}, source_<k> or reference_<k>, "
                                f"got {list(images)}")
        captions = q.get("captions") or ()
        if not isinstance(captions, (list, tuple)) or not all(isinstance(c, str) for c in captions) or (
                captions and len(captions) != len(images)):
            raise ProtocolError(f"{qwhere}: captions must be a list of {len(images)} string(s), one per images "
                                f"entry, got {captions!r}")
        scores = tuple(q.get("scores", ["score"]))
        if not scores:
            raise ProtocolError(f"{qwhere}: scores must name at least one number")
        prefix = q.get("expected_score_prefix")
        if prefix is not None and len(scores) != 1:
            raise ProtocolError(f"{qwhere}: expected_score_prefix needs exactly one score")
        user = _prompt_table(q.get("user"), where=f"{qwhere}.user")
        if not user:
            raise ProtocolError(f"{qwhere}: user prompt is required")
        answer = q.get("answer", "number")
        if answer not in ANSWERS:
            raise ProtocolError(f"{qwhere}: answer must be one of {', '.join(ANSWERS)}, got {answer!r}")
        if answer in ("yes-no", "pairwise") and len(scores) != 1:
            raise ProtocolError(f"{qwhere}: a {answer} answer is one score")
        if answer == "pairwise" and not {"edited_a", "edited_b"} <= set(images) or (
                answer != "pairwise" and {"edited_a", "edited_b"} & set(images)):
            raise ProtocolError(f"{qwhere}: a pairwise answer shows edited_a and edited_b, and only a pairwise "
                                f"answer shows them; got images {list(images)} with answer {answer}")
        qparse = q.get("parse")
        if qparse is not None and qparse not in PARSERS:
            raise ProtocolError(f"{qwhere}: unknown parse {qparse!r}; known: {', '.join(PARSERS)}")
        better = q.get("better", "higher")
        if better not in BETTER:
            raise ProtocolError(f"{qwhere}: better must be higher or lower, got {better!r}")
        label = q.get("label", "")
        if not isinstance(label, str) or len(label) > 40:
            raise ProtocolError(f"{qwhere}: label must be a short string, got {label!r}")
        questions.append(
            Question(
                name=str(qname),
                images=images,
                scores=scores,
                system=_prompt_table(q.get("system"), where=f"{qwhere}.system"),
                user=user,
                expected_score_prefix=prefix,
                parse=qparse,
                answer=answer,
                when=_when(q.get("when"), where=f"{qwhere}.when"),
                captions=tuple(captions),
                better=better,
                label=label.strip(),
            )
        )
    parse = data.get("parse", "json")
    if parse not in PARSERS:
        raise ProtocolError(f"{where}: unknown parse {parse!r}; known: {', '.join(PARSERS)}")
    text_first = data.get("text_first", False)
    if not isinstance(text_first, bool):
        raise ProtocolError(f"{where}: text_first must be true or false")
    aliases = data.get("category_aliases") or {}
    resize = data.get("resize") or {}
    if not isinstance(resize, dict) or set(resize) - set(RESIZE_KEYS):
        raise ProtocolError(f"{where}: resize takes edited: source, max_pixels: N, jpeg_thumbnail: N, sources_max_pixels: N, "
                            f"sources_multiple_of: N and/or jpeg: true, got {resize!r}")
    if "edited" in resize and resize["edited"] != "source":
        raise ProtocolError(f"{where}: resize.edited can only be 'source' (the source image's size)")
    if "max_pixels" in resize and (not isinstance(resize["max_pixels"], int) or isinstance(resize["max_pixels"], bool)
                                   or resize["max_pixels"] < 1):
        raise ProtocolError(f"{where}: resize.max_pixels must be a positive integer")
    for key in ("sources_max_pixels", "sources_multiple_of"):
        value = resize.get(key)
        if key in resize and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ProtocolError(f"{where}: resize.{key} must be a positive integer")
    if "jpeg" in resize and not isinstance(resize["jpeg"], bool):
        raise ProtocolError(f"{where}: resize.jpeg must be true or false")
    side = resize.get("jpeg_thumbnail")
    if "jpeg_thumbnail" in resize and (not isinstance(side, int) or isinstance(side, bool) or side < 1):
        raise ProtocolError(f"{where}: resize.jpeg_thumbnail must be a positive integer (the longest side)")
    pairwise = _pairwise(data.get("pairwise"), questions, where=where)
    budget = data.get("max_new_tokens")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
        raise ProtocolError(f"{where}: max_new_tokens must be a positive integer, got {budget!r}")
    protocol = Protocol(
        name=name,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        path=where,
        description=str(data.get("description", "")).strip(),
        low=low,
        high=high,
        combine=combine,
        strict_suffix=str(data.get("strict_suffix", "")),
        questions=tuple(questions),
        category_aliases={str(k): str(v) for k, v in aliases.items()},
        resize=dict(resize),
        parse=parse,
        text_first=text_first,
        max_new_tokens=budget,
        pairwise=pairwise,
        rule=rules[combine],
    )
    problem = protocol.rule.check(protocol)
    if problem:
        raise ProtocolError(f"{where}: {problem}")
    lower = [q.name for q in questions if q.better == "lower"]
    if lower and protocol.rule.better is None:
        raise ProtocolError(f"{where}: combine {combine!r} makes one score of its questions, higher taken as better; "
                            f"question(s) {', '.join(lower)} say better: lower (a rule whose headline is one question's "
                            "number, single or metrics, keeps its direction)")
    return protocol


def _pairwise(value, questions: list[Question], *, where: str) -> dict:
    """A protocol's `pairwise:` block, checked against its questions: every question pairwise, or none."""
    kinds = {q.answer == "pairwise" for q in questions}
    if kinds == {False}:
        if value is not None:
            raise ProtocolError(f"{where}: pairwise: given, but no question has answer: pairwise")
        return {}
    if kinds != {True}:
        raise ProtocolError(f"{where}: a pairwise protocol's questions are all pairwise (answer: pairwise)")
    value = {} if value is None else value
    if not isinstance(value, dict) or set(value) - {"orders", "disagreement"}:
        raise ProtocolError(f"{where}: pairwise takes orders: one|both and disagreement: tie|none, got {value!r}")
    out = {"orders": value.get("orders", "both"), "disagreement": value.get("disagreement", "tie")}
    if out["orders"] not in PAIR_ORDERS:
        raise ProtocolError(f"{where}: pairwise.orders must be one of {', '.join(PAIR_ORDERS)}, got {out['orders']!r}")
    if out["disagreement"] not in DISAGREEMENT:
        raise ProtocolError(f"{where}: pairwise.disagreement must be one of {', '.join(DISAGREEMENT)}, "
                            f"got {out['disagreement']!r}")
    return out


def _when(value, *, where: str) -> dict:
    """A question's `when`, checked: WHEN_KEYS only, lists of names or {variable: value} tables."""
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - set(WHEN_KEYS) or not value:
        raise ProtocolError(f"{where}: a mapping of {', '.join(WHEN_KEYS)}, got {value!r}")
    out: dict = {}
    for key, cond in value.items():
        if key in ("equals", "not_equals"):
            if not isinstance(cond, dict) or not cond:
                raise ProtocolError(f"{where}.{key}: a mapping variable -> value, got {cond!r}")
            out[key] = {str(k): ("true" if v is True else "false" if v is False else str(v)) for k, v in cond.items()}
        else:
            if isinstance(cond, str):
                cond = [cond]
            if not isinstance(cond, list) or not cond or not all(isinstance(c, str) for c in cond):
                raise ProtocolError(f"{where}.{key}: a list of names, got {cond!r}")
            out[key] = tuple(cond)
    return out


class ProtocolRegistry:
    """All protocols known to a server, by name; the default answers empty requests."""

    def __init__(self, protocols: dict[str, Protocol], default: str):
        if default not in protocols:
            raise ProtocolError(f"default protocol {default!r} not found; known: {', '.join(sorted(protocols))}")
        self.protocols = protocols
        self.default = default

    def get(self, name: str) -> Protocol:
        name = name or self.default
        try:
            return self.protocols[name]
        except KeyError:
            raise InvalidInput(f"unknown protocol {name!r}; known: {', '.join(sorted(self.protocols))}") from None

    def names(self) -> list[str]:
        return sorted(self.protocols)
