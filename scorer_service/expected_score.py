"""The expected score: the probability-weighted mean of the scores a judge could have given.

With p(· | context) the judge's next-token distribution, the context being the question's
first-attempt prompt followed by the prefix (e.g. `{"score": `) teacher-forced as the start of the
assistant's reply:
  * each integer s in the protocol's range is spelled by the tokens of str(s) (in Qwen's tokenizer
    digits are single tokens, so "10" is "1" then "0"); these spellings form a tree;
  * at every node of the tree the valid outcomes are its children and, if the digits so far are
    themselves a score, "the number ends here" (any token that does not start with a digit);
    the probabilities of the valid outcomes are renormalised to sum to 1 (an out-of-range spelling
    such as "11" is thus excluded, like a token that is no digit at the first position);
  * P(s) is the product along the path of s (times the end probability where s is also a prefix
    of a longer score), and expected_score = sum_s s * P(s).
With Qwen that is one forward pass per batch over prompt + prefix + "1": the last two positions
give the first-digit distribution and the distribution after "1". The value exists whether or not
the generated text parses; it is computed from the first-attempt prompt only.
A yes-no question (`answer: yes-no`) has the spellings yes/Yes (value 1) and no/No (value 0), so its
expected score is P(yes) renormalised over them. A pairwise question (`answer: pairwise`) has "Image A"
(1), "Image B" (0) and "Tie" (0.5), in the order shown; the value returned carries each one's
probability (samples.Expected.probs), which the judge reads as P(A), P(B), P(tie).

`ScoreTokenTree` is the tree for one (tokenizer, prefix, range); `ScoreTrees` makes and keeps them
for one tokenizer. Feeding the paths to a model is the backend's job (backends/transformers).
"""

from __future__ import annotations

import logging
import math

import torch

from suites.shared.protocol import Protocol, Question
from .samples import Expected, Prompt

log = logging.getLogger(__name__)


class ScoreTokenTree:
    """The spellings of a question's possible answers as token paths (see the module docstring)."""

    def __init__(self, tokenizer, prefix: str, choices: list[tuple[float, str]], digit_start: torch.Tensor):
        encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.prefix_ids = encode(prefix)
        self.root: dict = {"children": {}, "value": None}
        for value, spelling in choices:
            full = encode(prefix + spelling)
            if full[: len(self.prefix_ids)] != self.prefix_ids:
                raise ValueError(f"tokenizer merges the prefix {prefix!r} with the answer {spelling!r}")
            node = self.root
            for tok in full[len(self.prefix_ids):]:
                node = node["children"].setdefault(tok, {"children": {}, "value": None})
            node["value"] = value
        # paths to feed: the deepest path to each internal node covers all internal nodes above it
        internal: list[tuple[int, ...]] = []

        def collect(node, path):
            if node["children"]:
                internal.append(path)
                for tok, child in node["children"].items():
                    collect(child, path + (tok,))

        collect(self.root, ())
        self.paths = [p for p in internal if not any(q[: len(p)] == p and q != p for q in internal)]
        self.end_mask = ~digit_start  # "the number ends here": tokens that do not start with a digit

    def expected(self, dists: dict[tuple[int, ...], torch.Tensor]) -> float | None:
        """dists: node path -> probability vector over the vocabulary at that node."""
        probs: dict[int, float] = {}

        def walk(node, path, p):
            if not node["children"]:
                probs[node["value"]] = probs.get(node["value"], 0.0) + p
                return
            dist = dists[path]
            mass = {tok: float(dist[tok]) for tok in node["children"]}
            end = 0.0
            if node["value"] is not None:  # ids past the tokenizer (embedding padding) are no outcome
                n = min(dist.shape[0], self.end_mask.shape[0])
                end = float(dist[:n][self.end_mask[:n]].sum())
            total = sum(mass.values()) + end
            if total <= 0.0:
                raise ArithmeticError("no probability on any score token")
            if node["value"] is not None:
                probs[node["value"]] = probs.get(node["value"], 0.0) + p * end / total
            for tok, child in node["children"].items():
                walk(child, path + (tok,), p * mass[tok] / total)

        try:
            walk(self.root, (), 1.0)
        except ArithmeticError:
            return None
        return Expected.of(sum(v * p for v, p in probs.items()), probs)


YES_NO_SPELLINGS = ((1.0, "yes"), (1.0, "Yes"), (0.0, "no"), (0.0, "No"))
PAIRWISE_SPELLINGS = ((1.0, "Image A"), (0.0, "Image B"), (0.5, "Tie"))


def answer_choices(protocol: Protocol, question: Question) -> list[tuple[float, str]]:
    """(value, spelling) of every answer a question can get: the integers of the protocol's range, or
    yes (1) / no (0) in either case for a yes-no question (the expected score is then P(yes))."""
    if question.answer == "yes-no":
        return list(YES_NO_SPELLINGS)
    if question.answer == "pairwise":
        return list(PAIRWISE_SPELLINGS)
    return [(value, str(value)) for value in range(math.ceil(protocol.low), math.floor(protocol.high) + 1)]


def build_tree(tokenizer, protocol: Protocol, question: Question, digit_start: torch.Tensor) -> ScoreTokenTree:
    """The question's tree. Where the tokenizer merges the prefix's end with the answer after it
    ('{"score": "' + 'yes' may spell ' "yes'), up to 3 characters move from the prefix into every
    spelling (they are then teacher-forced like the prefix: one path in the tree, probability 1)."""
    prefix, choices = question.expected_score_prefix, answer_choices(protocol, question)
    for cut in range(0, min(3, len(prefix) - 1) + 1):
        head, tail = prefix[: len(prefix) - cut], prefix[len(prefix) - cut:]
        try:
            return ScoreTokenTree(tokenizer, head, [(v, tail + spelling) for v, spelling in choices], digit_start)
        except ValueError as exc:
            problem = exc
    raise problem


class ScoreTrees:
    """The score token trees of one tokenizer, made once per (prefix, range, answer kind)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._trees: dict[tuple, ScoreTokenTree | None] = {}
        self._digit_start: torch.Tensor | None = None

    def tree(self, protocol: Protocol, question: Question) -> ScoreTokenTree | None:
        """The tree for a question, or None where this tokenizer cannot give one (then results carry
        no expected score; said once in the log)."""
        key = (question.expected_score_prefix, protocol.low, protocol.high, question.answer)
        if key not in self._trees:
            if self._digit_start is None:
                texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
                self._digit_start = torch.tensor([bool(t) and t[0].isdigit() for t in texts])
            try:
                self._trees[key] = build_tree(self.tokenizer, protocol, question, self._digit_start)
            except ValueError as exc:
                log.warning("protocol %s: no expected score with this tokenizer: %s", protocol.name, exc)
                self._trees[key] = None
        return self._trees[key]

    def for_prompts(self, prompts: list[Prompt]) -> dict[int, ScoreTokenTree]:
        """prompt index -> tree, for the prompts whose question asks for an expected score."""
        trees = {}
        for idx, prompt in enumerate(prompts):
            if prompt.question.expected_score_prefix is not None:
                tree = self.tree(prompt.protocol, prompt.question)
                if tree is not None:
                    trees[idx] = tree
        return trees
