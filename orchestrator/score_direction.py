"""Which way a run's numbers are better, as its judge protocol declares it (each question's `better:`
and `label:`; suites/shared/protocol.py, "Direction"): its `score` (the protocol's headline: MagicBrush's
L1, lower better) and each sub-score (a question's number). `compare` ranks by it, and the report,
the console and compare show every number's name with its arrow ("L1 ↓", "CLIP-I ↑").

A run records its protocol's name and sha256 (manifest judge.protocol); the direction is read from
the protocol file of that name here (the judge's --protocols-dir, then the suites'), whatever its
text now: a run judged before a protocol declared its direction is ranked as the protocol now says.
Where no file of that name is here (a lab's own protocol directory gone), "higher" is assumed, and
`found` says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from suites.shared.protocol import ARROWS, Protocol

from .judge_protocol import find_protocol


@dataclass(frozen=True)
class Direction:
    label: str               # the number's name ("L1", "score")
    better: str = "higher"   # "higher" | "lower"

    @property
    def higher(self) -> bool:
        return self.better == "higher"

    @property
    def shown(self) -> str:
        """"L1 ↓"."""
        return f"{self.label} {ARROWS[self.better]}"

    def as_dict(self) -> dict:
        return {"label": self.label, "better": self.better, "shown": self.shown}


@dataclass(frozen=True)
class Directions:
    score: Direction = Direction("score")
    metrics: dict[str, Direction] = field(default_factory=dict)  # sub-score (question) name -> its direction
    protocol: str = ""
    found: bool = False      # the protocol's file was found here (else every number taken as higher-is-better)

    def of(self, sub_score: str) -> Direction:
        """A sub-score's direction: its question's ("<question>" or "<question>.<score>"), else higher."""
        if sub_score in self.metrics:
            return self.metrics[sub_score]
        question = self.metrics.get(sub_score.split(".", 1)[0])
        return Direction(sub_score, question.better if question else "higher")

    def describe(self) -> dict:
        return {"protocol": self.protocol, "protocol_found": self.found, **self.score.as_dict(),
                "sub_scores": {name: d.as_dict() for name, d in self.metrics.items()}}


def of_protocol(protocol: Protocol | None, name: str = "") -> Directions:
    if protocol is None:
        return Directions(protocol=name)
    return Directions(score=Direction(protocol.score_label, protocol.better),
                      metrics={q.name: Direction(q.label or q.name, q.better) for q in protocol.questions},
                      protocol=protocol.name, found=True)


def run_protocol(config, manifest: dict) -> Protocol | None:
    """The protocol a run was judged with (by the name its manifest records), as the file here reads."""
    name = ((manifest.get("judge") or {}).get("protocol") or {}).get("name") or config.judge.protocol
    if not name:
        return None
    return find_protocol(dataclasses.replace(config.judge, protocol=name))


def of_run(config, manifest: dict) -> Directions:
    name = ((manifest.get("judge") or {}).get("protocol") or {}).get("name") or config.judge.protocol or ""
    return of_protocol(run_protocol(config, manifest), name)


def console_metrics(judge, recorded: dict) -> tuple[dict[str, str] | None, str]:
    """For the judging phase's lines: (question -> label of a reference-metrics protocol, whose results
    are shown as their values, else None; the score's name where it is not a judge's score ("L1"), else
    ""). judge: the run's JudgeConfig; recorded: the protocol the judge reported (name, sha256)."""
    name = recorded.get("name") or judge.protocol
    protocol = find_protocol(dataclasses.replace(judge, protocol=name)) if name else None
    if protocol is None:
        return None, ""
    labels = {q.name: q.label or q.name for q in protocol.questions} if protocol.combine == "metrics" else None
    return labels, (protocol.score_label if protocol.score_label != "score" else "")
