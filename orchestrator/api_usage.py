"""Run totals of an API editor (editor.backend openai-images / openai-chat-image; issue 29): what the run
asked of the provider and what the provider reported, for summary.json, the console, the report page and
the manifest.

Counted over every edit line of the run folder (edits.jsonl: every session, superseded lines included),
since every request was sent and may have been billed:
  * calls: calls to the API editor that were recorded: an image (its call_arguments) or a failure that
    reached the provider (its message ends "after N attempt(s)": editfleet_common/api_attempts.py);
  * requests: HTTP requests sent to the provider by those calls, retries included;
  * retries: requests beyond the first of each call (429, 5xx, timeouts, cut replies, a passing 401);
  * refusals: edits the provider refused (content policy, safety filter: PERMISSION_DENIED), each kept
    with the provider's message; failures: the other failed edit lines;
  * handed-back calls: a call that failed in a way worth another try, whose sample was handed out again,
    has a line of its own (status "handed_back", keyed by `sample_id`, no `id`: orchestrator/dispatch.py)
    with its `api_requests`; a failure line's own call is its `api_requests` (the earlier calls its
    "gave up" message quotes have their handed-back lines). Run folders made before these lines: a
    failure's requests from its message, and an image's earlier calls unknown;
  * unrecorded_calls: calls whose requests are not known: an image's earlier calls in the same session
    with no handed-back line (the edit line's `attempts` beyond 1: run folders made before those lines),
    a call whose line says None (the editor died under it, a deadline of ours): `requests` is a lower
    bound whenever this is not 0 (`requests_exact` false);
  * usage: every number the provider reported under `usage`, summed by its (dotted) name, and how many
    images reported usage at all; cost: usage.cost summed where reported (OpenRouter reports it; OpenAI's
    Images API reports tokens only), None where no edit reported one;
  * served_models: the model ids the API answered with (the reply's `model`, else the models list's);
  * seed: whether the provider takes a seed. Where it does not, "same seed, same edit" does not apply to
    the run, and the totals say so ("not applicable ..."): it is not silently broken.
A request in flight when the orchestrator was killed outright is in no line: the provider may have
answered (and billed) it, these totals cannot know.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

from editfleet_common.api_attempts import requests_in

from .chains import CHAIN_FAILED

REFUSED = "PERMISSION_DENIED"
HANDED_BACK = "handed_back"  # an edits.jsonl line of a call whose sample was handed out again (no `id`)


def is_api_editor(identity: dict | None) -> bool:
    """The editors' identity (manifest["editor"]) is an API editor's."""
    return ((identity or {}).get("model") or {}).get("load_format") == "api"


def _arguments(line: dict) -> dict:
    """An edit line's call_arguments as values (each is stored as JSON text)."""
    out = {}
    for key, value in (line.get("call_arguments") or {}).items():
        try:
            out[key] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            out[key] = value
    return out


def _add_numbers(into: dict[str, float], usage: Any, prefix: str = "") -> None:
    """Every finite number in a usage object, by its dotted name (input_tokens_details.image_tokens)."""
    if isinstance(usage, dict):
        for key, value in usage.items():
            _add_numbers(into, value, f"{prefix}{key}.")
    elif isinstance(usage, (int, float)) and not isinstance(usage, bool) and math.isfinite(usage):
        name = prefix[:-1]
        into[name] = into.get(name, 0) + usage


def seed_note(identity: dict | None) -> dict:
    """Whether the API takes a seed, and what that means for "same seed, same edit"."""
    runtime = ((identity or {}).get("model") or {}).get("runtime") or {}
    text = str(runtime.get("seed") or "")
    takes = text.startswith("sent")
    return {"takes_seed": takes,
            "same_seed_same_edit": ("up to the provider: the seed is sent, whether it gives the same edit again is the "
                                    "provider's" if takes else
                                    "not applicable: the API takes no seed, so a rerun or another number of request "
                                    "slots does not give the same edits")}


def totals(lines: Iterable[dict], identity: dict | None) -> dict:
    """The run totals described in the module docstring, over edit lines (edits.jsonl)."""
    runtime = ((identity or {}).get("model") or {}).get("runtime") or {}
    calls = requests = unrecorded = edits = refusals = failures = with_usage = with_cost = 0
    usage: dict[str, float] = {}
    cost = 0.0
    served: set[str] = set()
    samples: set[str] = set()
    latency = 0.0
    handed_back: dict[str, int] = {}  # per sample: handed-back lines since its last edit line

    def own_call(sent: Any) -> None:  # a failed call's api_requests: a number, or None where not known
        nonlocal calls, requests, unrecorded
        if sent is None:
            unrecorded += 1
        elif int(sent) > 0:
            calls += 1
            requests += int(sent)

    for line in lines:
        if line.get("status") == HANDED_BACK:
            own_call(line.get("api_requests"))
            handed_back[str(line.get("sample_id"))] = handed_back.get(str(line.get("sample_id")), 0) + 1
            continue
        samples.add(str(line.get("id")))
        earlier = handed_back.pop(str(line.get("id")), 0)
        if line.get("status") == "ok":
            made = _arguments(line)
            edits += 1
            calls += 1
            requests += int(made.get("attempts") or 1)
            unrecorded += max(0, int(line.get("attempts") or 1) - 1 - earlier)
            latency += float(made.get("latency_s") or 0.0)
            if made.get("served_model"):
                served.add(str(made["served_model"]))
            if isinstance(made.get("usage"), dict):
                with_usage += 1
                _add_numbers(usage, made["usage"])
                if isinstance(made["usage"].get("cost"), (int, float)):
                    with_cost += 1
                    cost += float(made["usage"]["cost"])
        elif line.get("status") == "failed":
            if line.get("code") == REFUSED:
                refusals += 1
            else:
                failures += 1
            if "api_requests" in line:  # its own last call's (orchestrator/dispatch.py)
                own_call(line["api_requests"])
            elif line.get("code") != CHAIN_FAILED:  # a run folder made before: from its message (a chain's turn
                sent, made_calls = requests_in(str(line.get("error") or ""))  # not edited quotes its input's)
                requests += sent
                calls += made_calls
    if runtime.get("served_model"):
        served.add(str(runtime["served_model"]))
    usage.pop("cost", None)  # reported as cost below
    return {
        "backend": runtime.get("backend", ""),
        "provider": runtime.get("provider", ""),
        "endpoint_host": runtime.get("endpoint_host", ""),
        "model_requested": ((identity or {}).get("model") or {}).get("model", ""),
        "served_models": sorted(served),
        "max_concurrency": int(runtime["max_concurrency"]) if str(runtime.get("max_concurrency", "")).isdigit() else None,
        "samples": len(samples),
        "calls": calls,
        "requests": requests,
        "retries": requests - calls,
        "unrecorded_calls": unrecorded,
        "requests_exact": unrecorded == 0,
        "edits": edits,
        "refusals": refusals,
        "failures": failures,
        "latency_s": round(latency, 3),
        "usage": {k: (int(v) if float(v).is_integer() else round(v, 6)) for k, v in sorted(usage.items())},
        "edits_with_usage": with_usage,
        "cost": round(cost, 6) if with_cost else None,
        "edits_with_cost": with_cost,
        "seed": seed_note(identity),
    }


def console_lines(api: dict) -> list[str]:
    """The summary block's lines for an API editor."""
    served = ", ".join(api["served_models"]) or "not reported"
    requests = f"{api['requests']}" + ("" if api["requests_exact"] else
                                       f"+ ({api['unrecorded_calls']} call(s) of unknown requests)")
    lines = [
        f"  Editor API: {api['provider'] or api['backend']} at {api['endpoint_host']}, model {api['model_requested']} "
        f"(answered as {served})",
        f"  API requests: {requests} for {api['edits']} image(s)   retries: {api['retries']}   "
        f"refusals: {api['refusals']}   other failures: {api['failures']}",
    ]
    if api["usage"]:
        shown = ", ".join(f"{k} {v}" for k, v in api["usage"].items())
        lines.append(f"  API usage ({api['edits_with_usage']} of {api['edits']} image(s) reported it): {shown}")
    else:
        lines.append("  API usage: not reported by the provider")
    lines.append(f"  API cost: {api['cost']:g} as reported ({api['edits_with_cost']} of {api['edits']} image(s))"
                 if api["cost"] is not None else "  API cost: not reported by the provider")
    lines.append(f"  Same seed, same edit: {api['seed']['same_seed_same_edit']}")
    return lines
