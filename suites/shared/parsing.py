"""Judge reply -> score(s), or a failure with a reason. Never a guess.

Tolerant of the ways real judges answer:
  * JSON, bare or in a ``` fence, possibly surrounded by prose: {"score": 7, "response": "..."};
    a list where the protocol asks for several numbers: {"score": [7, 8], "reasoning": "..."};
    VIEScore's ||V^=^V|| delimiters around the JSON
  * a labelled number: "Score: 7", "Final score: 7/10", "评分：7"
  * a rating with its scale: "7/10", "7 out of 10"
  * a reply that is just the number(s): "7", "[7, 8]"
and strict about everything else:
  * several different candidate scores (JSON objects that disagree, prose such as "between 6 and
    8") -> failure: ambiguous
  * a number outside the protocol's range, or a rating on another scale ("4/5") -> failure
  * a single number somewhere in prose ("The image shows 3 cats") -> failure: not a score
When several sources agree (the JSON says 7 and the prose says "7/10"), that value is used.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import partial

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_VIESCORE_DELIM = re.compile(r"\|\|V\^=\^V\|\|(.*?)\|\|V\^=\^V\|\|", re.S)
_SCORE_KEYS = ("score", "scores", "final_score", "overall_score", "rating", "评分", "分数")
_TEXT_KEYS = ("response", "reasoning", "reason", "explanation", "rationale", "comment")
# "Score: 7", "final score is 7/10", "Rating - 8 out of 10", "**Score**: 7", "评分：7", and the
# `"score": 7` of a JSON reply cut short by max_new_tokens
_LABELLED = re.compile(
    # a dash separates only when no digit follows it: in "Score -1" it is the number's sign
    r"(?:final\s+|overall\s+)?(?:score|rating|评分|分数|得分)[\"']?\**\s*(?:is|of|[:：=]|-(?!\d))?\s*\**\s*"
    r"(" + _NUMBER + r")(?:\s*(?:/|out\s+of)\s*(" + _NUMBER + r"))?",
    re.I,
)
# "Score: 6-8", "7 or 8", "6 to 8": a labelled number that opens a range or an alternative
_RANGE_AFTER = re.compile(r"\s*(?:/\s*" + _NUMBER + r"\s*)?(?:-|–|—|~|to\b|or\b)\s*\(?\s*\d", re.I)
_RATED = re.compile(r"(" + _NUMBER + r")\s*(?:/|out\s+of)\s*(" + _NUMBER + r")", re.I)
_BARE_LIST = re.compile(r"\[\s*(" + _NUMBER + r"(?:\s*,\s*" + _NUMBER + r")*)\s*\]")


@dataclass
class Parsed:
    ok: bool
    scores: list[float] = field(default_factory=list)
    response: str = ""
    reason: str = ""  # why parsing failed (or which rule matched, when ok)


def _fail(reason: str) -> Parsed:
    return Parsed(ok=False, reason=reason)


def _objects_in(text: str):
    """(start, end, object) for every outermost JSON object in the text, strict or lenient."""
    decoder = json.JSONDecoder()
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            obj, end = _lenient_object(text, i)
        if isinstance(obj, dict):
            yield i, end, obj
            i = text.find("{", end)
        else:
            i = text.find("{", i + 1)


def _json_objects(text: str) -> list[dict]:
    """Every JSON object in the text: fenced, delimited or embedded in prose (outermost braces)."""
    chunks = [m.group(1) for m in _VIESCORE_DELIM.finditer(text)] + [m.group(1) for m in _FENCE.finditer(text)]
    chunks.append(text)
    found: list[dict] = []
    seen: set[str] = set()
    for chunk in chunks:
        for _, _, obj in _objects_in(chunk):
            key = json.dumps(obj, sort_keys=True, ensure_ascii=False)
            if key not in seen:
                seen.add(key)
                found.append(obj)
    return found


def _outside_json(text: str) -> str:
    """The text with every JSON object in it cut out: the prose around the JSON."""
    kept, pos = [], 0
    for start, end, _ in _objects_in(text):
        kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])
    return " ".join(kept)


def _lenient_object(chunk: str, start: int):
    """Single quotes / trailing commas, as small models write them; None if still not JSON."""
    depth = 0
    for j in range(start, len(chunk)):
        if chunk[j] == "{":
            depth += 1
        elif chunk[j] == "}":
            depth -= 1
            if depth == 0:
                candidate = chunk[start : j + 1]
                candidate = re.sub(r",\s*([}\]])", r"\1", candidate)
                if "'" in candidate and '"' not in candidate:
                    candidate = candidate.replace("'", '"')
                try:
                    return json.loads(candidate), j + 1
                except json.JSONDecodeError:
                    return None, start + 1
    return None, start + 1


def _as_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(" + _NUMBER + r")\s*(?:/\s*10)?\s*", value)
        if m:
            return float(m.group(1))
    return None


def _scores_from_object(obj: dict, n: int) -> list[float] | None:
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for key in _SCORE_KEYS:
        if key not in lowered:
            continue
        value = lowered[key]
        if isinstance(value, list):
            numbers = [_as_number(v) for v in value]
            if len(numbers) == n and all(v is not None for v in numbers):
                return numbers  # type: ignore[return-value]
            return None
        number = _as_number(value)
        if number is not None and n == 1:
            return [number]
        return None
    return None


def _text_from_object(obj: dict) -> str:
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for key in _TEXT_KEYS:
        if isinstance(lowered.get(key), str):
            return lowered[key].strip()
    return ""


def _check_range(scores: list[float], low: float, high: float, rule: str) -> Parsed | None:
    bad = [s for s in scores if not (low <= s <= high)]
    if bad:
        return _fail(f"{rule}: score(s) {', '.join(f'{b:g}' for b in bad)} outside [{low:g}, {high:g}]")
    return None


def _agree(candidates: list[list[float]]) -> list[float] | None:
    unique = {tuple(c) for c in candidates}
    return list(next(iter(unique))) if len(unique) == 1 else None


_LINE_VALUE = re.compile(r"[0-9]+")


def _labelled_lines(text: str) -> tuple[list[float], list[str]]:
    """ImgEdit-Bench's scripts' reading (step1_get_avgscore.py, UGE's get_average_score.py): every line
    split on ": " into exactly two parts whose second part is all digits, in reply order: (its scores,
    their labels)."""
    scores, labels = [], []
    for line in text.splitlines():
        parts = line.strip().split(": ")
        if len(parts) == 2 and _LINE_VALUE.fullmatch(parts[1]):
            labels.append(parts[0])
            scores.append(float(parts[1]))
    return scores, labels


def _brief_reasoning(text: str) -> str:
    """The reply's "Brief reasoning:" line's text, else ""."""
    return next((l.split(":", 1)[1].strip() for l in text.splitlines()
                 if l.strip().lower().startswith("brief reasoning:")), "")


def parse_labelled_lines(text: str, n_scores: int = 1, low: float = 0.0, high: float = 10.0) -> Parsed:
    """ImgEdit-Bench's rule (PKU-YuanGroup/ImgEdit Benchmark/Basic/step1_get_avgscore.py): every line
    split on ": " into exactly two parts whose second part is all digits is one score, in reply
    order. Stricter than step1, which averages however many it finds: exactly `n_scores` such lines,
    each in [low, high], else a failure naming what was found."""
    if not text or not text.strip():
        return _fail("empty reply")
    scores, labels = _labelled_lines(text)
    if len(scores) != n_scores:
        return _fail(f"labelled lines: expected {n_scores} '<name>: <number>' line(s), found {len(scores)}"
                     + (f" ({', '.join(labels)})" if labels else ""))
    bad = _check_range(scores, low, high, "labelled lines")
    if bad:
        return bad
    response = _brief_reasoning(text)
    return Parsed(ok=True, scores=scores, response=response, reason="labelled lines")


def parse_labelled_lines_mean(text: str, n_scores: int = 1, low: float = 0.0, high: float = 10.0) -> Parsed:
    """ImgEdit-Bench UGE's rule (PKU-YuanGroup/ImgEdit Benchmark/UGE/get_average_score.py): every line
    split on ": " into exactly two parts whose second part is all digits is a score, and the reply's
    one score is their mean, however many there are (the UGE prompt names no score line). A reply
    with none, or with one outside [low, high], is a failure naming what was found (the script
    drops the first and averages the second in)."""
    if n_scores != 1:
        return _fail(f"labelled-lines-mean gives one score, the question asks for {n_scores}")
    if not text or not text.strip():
        return _fail("empty reply")
    scores, labels = _labelled_lines(text)
    if not scores:
        return _fail("labelled lines: no '<name>: <number>' line")
    bad = _check_range(scores, low, high, "labelled lines")
    if bad:
        return bad
    response = _brief_reasoning(text)
    return Parsed(ok=True, scores=[sum(scores) / len(scores)], response=response,
                  reason=f"labelled lines, mean of {len(scores)} ({', '.join(labels)})")


_KEYED_VALUE = r"""["'*]*\s*[:：=]\s*["'*]*\s*([-+]?\d+(?:\.\d+)?|[A-Za-z]+)"""


def _keyed(key: str) -> re.Pattern:
    """`key: N` for one JSON key, as a judge writes it: "consistency_score": 4 (valid JSON or not),
    consistency_score: 4, Consistency Score: 4, **consistency_score**: "4"."""
    words = r"[_ ]".join(re.escape(w) for w in key.split("_"))
    return re.compile(r"(?<![A-Za-z_])" + words + r"(?![A-Za-z_])" + _KEYED_VALUE, re.I)


def parse_json_keys(text: str, n_scores: int = 1, low: float = 1.0, high: float = 5.0, *, names=()) -> Parsed:
    """One integer in [low, high] per JSON key (the question's score `names`, in order) from a reply
    that answers with the JSON a prompt asks for (KRIS-Bench: {"reasoning": ..., "consistency_score": 4}). Each key's value
    is read where the reply writes `key: value`, inside JSON or not (the prompts' own templates are
    not valid JSON); every place the reply gives the key must agree. A key missing, given a value that
    is not an integer ("X", 4.5), given different values, or out of range is a failure saying so:
    never the first digit of the reply, never clamped into range."""
    if len(names) != n_scores:
        return _fail(f"json keys: {n_scores} score(s) but the key names {list(names)}")
    if not text or not text.strip():
        return _fail("empty reply")
    scores = []
    for key in names:
        found = [m.group(1) for m in _keyed(key).finditer(text)]
        if not found:
            return _fail(f"json keys: no {key!r} in the reply")
        numbers = set()
        for value in found:
            try:
                number = float(value)
            except ValueError:
                return _fail(f"json keys: {key!r} is {value!r}, not a number")
            if number != int(number):
                return _fail(f"json keys: {key!r} is {value}, not an integer")
            numbers.add(number)
        if len(numbers) > 1:
            return _fail(f"json keys: ambiguous: {key!r} given as {', '.join(f'{n:g}' for n in sorted(numbers))}")
        scores.append(numbers.pop())
    bad = _check_range(scores, low, high, "json keys")
    if bad:
        return bad
    response = text.strip()  # the reasoning the JSON gives, where it is valid JSON
    for obj in _json_objects(text):
        texts = [v.strip() for k, v in obj.items() if "reason" in str(k).lower() and isinstance(v, str) and v.strip()]
        if texts:
            response = "\n".join(texts)
            break
    return Parsed(ok=True, scores=scores, response=response, reason="json keys")


def parse_for(name: str, names=()):
    """The reply parser a protocol or question names (`parse:`): PARSERS; those in KEYED read each
    score under its name (the question's `scores`), given here."""
    return partial(PARSERS[name], names=tuple(names)) if name in KEYED else PARSERS[name]


def parse_reply(text: str, n_scores: int = 1, low: float = 0.0, high: float = 10.0) -> Parsed:
    """Read `n_scores` numbers in [low, high] from a judge reply, or fail with a reason."""
    if not text or not text.strip():
        return _fail("empty reply")

    # 1. JSON objects that carry a score field
    objects = _json_objects(text)
    json_hits = [(s, obj) for obj in objects if (s := _scores_from_object(obj, n_scores)) is not None]
    if json_hits:
        agreed = _agree([s for s, _ in json_hits])
        if agreed is None:
            return _fail(f"ambiguous: JSON objects give different scores {[s for s, _ in json_hits]}")
        bad = _check_range(agreed, low, high, "json")
        if bad:
            return bad
        if n_scores == 1:  # a labelled score or a rating in the prose around the JSON must agree
            prose = _outside_json(text)
            others = {float(m.group(1)) for m in _LABELLED.finditer(prose)}
            others |= {float(m.group(1)) for m in _RATED.finditer(prose) if float(m.group(2)) == high}
            if others - {agreed[0]}:
                return _fail(f"ambiguous: JSON gives {agreed[0]:g}, the text around it {sorted(others)}")
        response = next((t for _, obj in json_hits if (t := _text_from_object(obj))), "")
        return Parsed(ok=True, scores=agreed, response=response, reason="json")
    if any(str(k).lower() in _SCORE_KEYS for obj in objects for k in obj):
        return _fail(f"JSON score field is not {n_scores} number(s)")

    stripped = text.strip().rstrip(".").strip()
    if n_scores == 1:
        # 2. the whole reply is a number
        if re.fullmatch(_NUMBER, stripped):
            value = [float(stripped)]
            return _check_range(value, low, high, "bare number") or Parsed(True, value, "", "bare number")

        # 3. labelled numbers ("Score: 7/10"); an explicit label wins over other numbers in prose
        labelled = []
        for m in _LABELLED.finditer(text):
            if m.group(2) is not None and float(m.group(2)) != high:
                return _fail(f"labelled score {m.group(0)!r} is on another scale than 0-{high:g}")
            if _RANGE_AFTER.match(text, m.end(1) if m.group(2) is None else m.end()):
                return _fail(f"ambiguous: labelled score {m.group(0)!r} opens a range or an alternative")
            labelled.append([float(m.group(1))])
        if labelled:
            # a rating on the same scale elsewhere in the reply is another candidate ("7/10 (or 8/10)")
            labelled += [[float(r.group(1))] for r in _RATED.finditer(text) if float(r.group(2)) == high]
            agreed = _agree(labelled)
            if agreed is None:
                return _fail(f"ambiguous: labelled scores {sorted({c[0] for c in labelled})}")
            return _check_range(agreed, low, high, "label") or Parsed(True, agreed, text.strip(), "label")

        # 4. ratings with their scale ("7/10", "7 out of 10")
        rated = [m for m in _RATED.finditer(text) if float(m.group(2)) == high]
        if rated:
            agreed = _agree([[float(m.group(1))] for m in rated])
            if agreed is None:
                return _fail(f"ambiguous: several ratings {sorted({float(m.group(1)) for m in rated})}")
            return _check_range(agreed, low, high, "rating") or Parsed(True, agreed, text.strip(), "rating")
        other_scale = _RATED.search(text)
        if other_scale:
            return _fail(f"rating {other_scale.group(0)!r} is on another scale than 0-{high:g}")
        numbers = re.findall(_NUMBER, text)
        if numbers:
            return _fail(f"no score label, JSON or rating; {len(numbers)} number(s) in prose: not a score")
        return _fail("no number in reply")

    # several scores: a bare list "[7, 8]" (VIEScore's last resort), only when there is one such list
    lists = [[float(x) for x in m.group(1).split(",")] for m in _BARE_LIST.finditer(text)]
    lists = [lst for lst in lists if len(lst) == n_scores]
    if lists:
        agreed = _agree(lists)
        if agreed is None:
            return _fail(f"ambiguous: several lists {lists}")
        return _check_range(agreed, low, high, "list") or Parsed(True, agreed, text.strip(), "list")
    return _fail(f"no JSON score list or bare list of {n_scores} numbers")


_YES_NO = {"yes": 1.0, "no": 0.0}
_WORD = re.compile(r"[\s\"'.*!`]*([A-Za-z]+)[\s\"'.*!`]*")


def _yes_no_word(value) -> float | None:
    if not isinstance(value, str):
        return None
    m = _WORD.fullmatch(value)
    return _YES_NO.get(m.group(1).lower()) if m else None


def parse_yes_no(text: str, n_scores: int = 1, low: float = 0.0, high: float = 1.0) -> Parsed:
    """A yes/no answer (a question with `answer: yes-no`): 1.0 for yes, 0.0 for no. Read from JSON
    objects whose score field is "yes" or "no" (they must agree), or from a reply that is just the word;
    anything else (no verdict, "yes and no", a verdict only somewhere in prose) is a failure."""
    if n_scores != 1:
        return _fail("yes-no: one answer per question")
    if not text or not text.strip():
        return _fail("empty reply")
    objects = _json_objects(text)
    verdicts = []
    for obj in objects:
        lowered = {str(k).lower(): v for k, v in obj.items()}
        key = next((k for k in _SCORE_KEYS if k in lowered), None)
        if key is None:
            continue
        value = _yes_no_word(lowered[key])
        if value is None:
            return _fail(f"yes-no: JSON {key!r} is {lowered[key]!r}, not yes or no")
        verdicts.append((value, _text_from_object(obj)))
    if verdicts:
        values = {v for v, _ in verdicts}
        if len(values) > 1:
            return _fail("ambiguous: JSON objects answer both yes and no")
        return Parsed(ok=True, scores=[verdicts[0][0]], response=next((t for _, t in verdicts if t), ""),
                      reason="json yes-no")
    value = _yes_no_word(text)
    if value is not None:
        return Parsed(ok=True, scores=[value], response="", reason="bare yes-no")
    return _fail("yes-no: no JSON score of yes/no and the reply is not just yes or no")


# RISEBench's label (gpt_eval.py `extract`: r'\*?\*?Final Score\*?\*?:?\s*([\d*\s,\n]*)', any case, then the
# "Final Scores" spelling): the label, then the run of digits, stars, spaces and commas after it.
_FINAL_SCORE = re.compile(r"\*?\*?Final Scores?\*?\*?:?\s*([\d*\s,]*)", re.I)
_FINAL_TAIL_DECIMAL = re.compile(r"[.,]\d")
_FINAL_TAIL_RANGE = re.compile(r"\s*(?:-|–|—|~|to\b|or\b)\s*\**\s*\d", re.I)
_FINAL_TAIL_SCALE = re.compile(r"\s*(?:/|out\s+of)\s*(\d+)", re.I)


def parse_final_score(text: str, n_scores: int = 1, low: float = 1.0, high: float = 5.0) -> Parsed:
    """RISEBench's "**Final Score:** **N**" (PhoenixZ810/RISEBench gpt_eval.py `extract`), strictly: every
    "Final Score" label followed by a number must give one integer, the same one, in [low, high]
    ("N/high" and "N out of high" are read as N). gpt_eval.py instead takes the first label's digits
    however many there are, truncates "4.5" to 4, reads the echoed "1-5" as 1 and keeps any value:
    each of those is a failure here, with the reason."""
    if n_scores != 1:
        return _fail(f"final score: one score per question, the protocol asks for {n_scores}")
    if not text or not text.strip():
        return _fail("empty reply")
    values = []
    for m in _FINAL_SCORE.finditer(text):
        numbers = re.findall(r"\d+", m.group(1))
        if not numbers:
            continue  # "Final Score: **X**" echoed, or the label in prose: gpt_eval.py looks further too
        label = m.group(0).strip()
        if len(numbers) > 1:
            return _fail(f"final score: several numbers after the label ({label!r})")
        tail = text[m.end():]
        if _FINAL_TAIL_DECIMAL.match(tail):
            return _fail(f"final score: not an integer ({label + tail[:3]!r})")
        if _FINAL_TAIL_RANGE.match(tail):
            return _fail(f"final score: a range or an alternative, not one score ({(label + tail[:6]).strip()!r})")
        scale = _FINAL_TAIL_SCALE.match(tail)
        if scale and float(scale.group(1)) != high:
            return _fail(f"final score: on another scale than {low:g}-{high:g} ({label + scale.group(0)!r})")
        values.append(float(numbers[0]))
    if not values:
        return _fail("no 'Final Score: N' in the reply")
    if len(set(values)) > 1:
        return _fail(f"ambiguous: final scores {', '.join(f'{v:g}' for v in values)}")
    return _check_range(values[:1], low, high, "final score") or Parsed(True, values[:1], text.strip(), "final score")


def parse_final_score_binary(text: str, n_scores: int = 1, low: float = 0.0, high: float = 1.0) -> Parsed:
    """RISEBench's logical questions: "Final Score: 0" or "1" (0/1 whatever the protocol's range:
    gpt_eval.py maps 4*min(s, 1)+1, so a "5" would count as correct there; a failure here)."""
    return parse_final_score(text, n_scores, 0.0, 1.0)


# A pairwise answer (a question with `answer: pairwise`), as one number in the order the images were
# SHOWN: 1.0 = the image shown as "Image A" wins, 0.0 = "Image B" wins, 0.5 = a tie. The judge swaps it
# back (1 - value) for an order asked with the two edits exchanged.
PAIR_VALUES = {"A": 1.0, "B": 0.0, "tie": 0.5}
PAIR_WINNERS = {v: k for k, v in PAIR_VALUES.items()}
# GEditBench v2's reading of a winner (src/autopipeline/components/modules/judge.py, _is_valid_winner,
# case-insensitive): image_a / image a / a, image_b / image b / b, tie / equal / both / none.
_WINNER_WORDS = {"image_a": "A", "image a": "A", "a": "A", "image_b": "B", "image b": "B", "b": "B",
                 "tie": "tie", "equal": "tie", "both": "tie", "none": "tie"}
_WINNER_KEYS = ("winner", "answer", "verdict", "choice")


def _winner_word(value) -> str | None:
    if not isinstance(value, str):
        return None
    word = value.strip().strip("\"'.*!`").strip().lower()
    return _WINNER_WORDS.get(word)


def parse_pairwise(text: str, n_scores: int = 1, low: float = 0.0, high: float = 1.0) -> Parsed:
    """A pairwise verdict as the suite writes it ({"winner": "Image A" | "Image B" | "Tie"}), read as
    GEditBench v2's judge reads the value (any case; "A", "image_b", "equal", "both", "none" too):
    1.0 for Image A, 0.0 for Image B, 0.5 for a tie, in the order the images were shown. From JSON
    objects with a "winner" key (fenced, in prose or cut short; they must agree), or from a reply that
    is just the verdict ("Image B", "Tie"). Anything else (no verdict, a verdict only in prose, two
    different winners, a winner that is no verdict) is a failure with the reason: never guessed."""
    if n_scores != 1:
        return _fail("pairwise: one verdict per question")
    if not text or not text.strip():
        return _fail("empty reply")
    verdicts = []
    for obj in _json_objects(text):
        lowered = {str(k).lower(): v for k, v in obj.items()}
        key = next((k for k in _WINNER_KEYS if k in lowered), None)
        if key is None:
            continue
        winner = _winner_word(lowered[key])
        if winner is None:
            return _fail(f"pairwise: JSON {key!r} is {lowered[key]!r}, not Image A, Image B or Tie")
        verdicts.append((winner, _text_from_object(obj)))
    if not verdicts:  # a winner cut short by the token budget: "winner": "Image A" without the closing brace
        cut = re.findall(r'"winner"\s*:\s*"([^"]*)"', text, re.I)
        for value in cut:
            winner = _winner_word(value)
            if winner is None:
                return _fail(f"pairwise: 'winner' is {value!r}, not Image A, Image B or Tie")
            verdicts.append((winner, ""))
    if verdicts:
        winners = {w for w, _ in verdicts}
        if len(winners) > 1:
            return _fail(f"ambiguous: the reply names several winners ({', '.join(sorted(winners))})")
        winner = verdicts[0][0]
        return Parsed(ok=True, scores=[PAIR_VALUES[winner]], response=next((t for _, t in verdicts if t), ""),
                      reason="json winner")
    winner = _winner_word(text)
    if winner is not None:
        return Parsed(ok=True, scores=[PAIR_VALUES[winner]], response="", reason="bare winner")
    return _fail("pairwise: no JSON winner and the reply is not just Image A, Image B or Tie")


PARSERS = {"json": parse_reply, "labelled-lines": parse_labelled_lines,
           "labelled-lines-mean": parse_labelled_lines_mean, "yes-no": parse_yes_no,
           "json-keys": parse_json_keys, "pairwise": parse_pairwise,
           "final-score": parse_final_score, "final-score-binary": parse_final_score_binary}
KEYED = {"json-keys"}  # parsers that read each score by its name
