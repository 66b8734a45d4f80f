"""Checks run before anything starts (no service, no run folder): what would otherwise be found only
after the editing phase. Today: the judge protocol exists where the run's own judge will look for it,
and it can judge every sample (its categories, template variables and images)."""

from __future__ import annotations

import re

from suites.shared.protocol import Protocol
from suites.shared.samples import Sample

from .config import RunConfig
from .judge_protocol import find_protocol, protocol_files

SHOWN = 5  # sample ids listed per problem
_OWN_WORDS = re.compile(r"^protocol '[^']*'( \(category '[^']*'\))?: ")  # said once in the line already


class PreflightError(Exception):
    """Problems found before the run started: every one listed, nothing started."""


def unmet(protocol: Protocol, sample: Sample) -> str | None:
    """Why `protocol` cannot judge `sample` (its request as scoring.build_score_request sends it)."""
    variables = {**sample.judge_variables(), "category": sample.category}
    if sample.instruction.strip():
        variables["edit_instruction"] = sample.instruction
    present = {name for name, there in (("reference", sample.reference_images),
                                         ("more_sources", sample.more_images)) if there}
    return protocol.unmet(sample.category, variables, present, len(sample.image_paths()) or 1)


def check_judging(config: RunConfig, samples: list[Sample]) -> None:
    """Raise PreflightError listing every problem: an unknown protocol (on the local fleet, whose judge
    reads exactly these files), samples the protocol cannot judge (grouped by reason)."""
    name = config.judge.protocol
    protocol = find_protocol(config.judge)
    if protocol is None:
        if config.fleet.kind != "local":
            return  # a judge started elsewhere may hold other protocols: it is asked when it is reached
        known = sorted({p.stem for p in protocol_files(config.judge)})
        raise PreflightError(f"judge protocol {name!r} not found; known: {', '.join(known)} "
                             "(a protocol of your own: judge.server_args --protocols-dir DIR, or a suite folder)")
    reasons: dict[str, list[str]] = {}
    for sample in samples:
        why = unmet(protocol, sample)
        if why:  # grouped by reason, whatever the category
            reasons.setdefault(_OWN_WORDS.sub("", why), []).append(sample.id)
    if reasons:
        lines = [f"{len(ids)} sample(s) cannot be judged with protocol {name!r}: {why} "
                 f"({', '.join(ids[:SHOWN])}{', ...' if len(ids) > SHOWN else ''})" for why, ids in reasons.items()]
        raise PreflightError("nothing was started:\n  " + "\n  ".join(lines)
                             + "\n  (name a protocol for this data with --protocol; `orchestrator suites` lists "
                               "each suite's own)")
