"""The run's results as they stand: the current edit and score of each sample, the summary and its
totals (summary.json, the tables, the report, the console's summary block), how many samples ended
how, and an API judge's record in the manifest (tokens, served models, fingerprints)."""

from __future__ import annotations

from editfleet_common import statuses

from . import api_usage, score_direction, suite_headline
from . import ui as ui_lines
from .benchmark import Sample, headline
from .chains import with_inputs
from .config import RunConfig
from .report import write_report
from .results import RunDir, judge_tokens, latest_by_id, made_for, summarize, write_json_atomic
from .tables import write_tables


def current_results(run_dir: RunDir, samples: list[Sample]) -> tuple[dict, dict]:
    """The latest edit line per sample (valid image or failure) and the score of that very edit."""
    latest = latest_by_id(run_dir.edits.read())
    done, _ = run_dir.edit_state(samples)
    current = {s.id: s for s in samples}
    edits = {i: r for i, r in latest.items()
             if i in done or (r.get("status") == "failed" and (i not in current or made_for(r, current[i])))}
    edits.update(done)
    return edits, run_dir.current_scores(done)


def finish(config: RunConfig, run_dir: RunDir, manifest: dict, samples: list[Sample], ui,
           *, title: str = "Summary") -> dict:
    edits, scores = current_results(run_dir, samples)
    samples = with_inputs(samples, run_dir.edit_path, edits)  # a chain's turn: its input shown is the edit it edited
    summary = summarize(samples, edits, scores, failures_as=config.judge.failures,
                        headline=headline((manifest.get("benchmark") or {}).get("format")))
    summary["run"] = {"output": str(run_dir.path), "editor": config.editor.model, "judge": config.judge.model,
                      "protocol": ((manifest.get("judge") or {}).get("protocol") or {}).get("name")}
    summary["score"] = score_direction.of_run(config, manifest).describe()  # its name and which way is better
    if api_usage.is_api_editor(manifest.get("editor")):  # requests, retries, refusals, usage, cost; the seed's note
        summary["editor_api"] = manifest["editor_api"] = api_usage.totals(run_dir.edits.read(), manifest["editor"])
    block = suite_headline.headline((manifest.get("benchmark") or {}).get("format"), summary["run"]["protocol"],
                            samples, edits, scores, failures_as=config.judge.failures)
    missing = suite_headline.absent((manifest.get("benchmark") or {}).get("format"), summary["run"]["protocol"])
    if block:
        summary["suite"] = block
    if missing:
        summary["suite_absent"] = missing
    write_json_atomic(run_dir.summary_path, summary)
    write_tables(run_dir, samples, edits, scores, summary)
    write_report(run_dir, samples, edits, scores, summary, manifest)
    ui.print(ui_lines.summary_block(summary, title))
    ui.print(ui_lines.category_table(summary))
    if block:
        ui.print(suite_headline.console(block))
    if missing:
        ui.print(missing["why"])
    ui.print(ui_lines.RULE)
    return summary


def failure_counts(run_dir: RunDir, samples: list[Sample]) -> dict[str, int]:
    """How many samples ended how, other than OK: edit failures, then each score status (in that order)."""
    edits, scores = current_results(run_dir, samples)
    counts: dict[str, int] = {"edit failed": 0, **{status: 0 for status in statuses.STATUSES if status != statuses.OK}}
    for sample in samples:
        edit, score = edits.get(sample.id), scores.get(sample.id)
        if edit is not None and edit.get("status") == "failed":
            key = "edit failed"
        elif score is not None and score.get("status") != statuses.OK:
            key = str(score.get("status"))
        else:
            continue
        counts[key] = counts.get(key, 0) + 1
    return {key: n for key, n in counts.items() if n}



def api_judge_record(info: dict, prior: dict | None) -> dict:
    """The manifest's record of an API judge (none for a local one): endpoint host, the model as asked
    for and as the server reports it, system fingerprints; filled in by record_api_usage."""
    runtime = info["model"]["runtime"]
    if runtime.get("backend") != "openai":
        return {}
    prior = prior or {}
    served = [m for m in [runtime.get("served_model", "")] if m]
    fingerprints = [f for f in [runtime.get("system_fingerprint", "")] if f]
    return {"api": {
        "endpoint_host": runtime.get("endpoint_host", ""),
        "model_requested": info["model"]["model"],
        "served_models": sorted(set(prior.get("served_models", [])) | set(served)),
        "system_fingerprints": sorted(set(prior.get("system_fingerprints", [])) | set(fingerprints)),
        "tokens": prior.get("tokens", {"prompt": 0, "completion": 0, "per_sample": {}}),
    }}


def record_api_usage(manifest: dict, run_dir: RunDir, samples: list[Sample]) -> None:
    """Tokens per sample and in total over the run dir's current scores, and every model name and
    system_fingerprint the endpoint answered with."""
    api = manifest["judge"]["api"]
    _, scores = current_results(run_dir, samples)
    per_sample = {i: {"prompt": int(r.get("prompt_tokens") or 0), "completion": int(r.get("completion_tokens") or 0)}
                  for i, r in sorted(scores.items())}
    totals = judge_tokens(scores)
    api["tokens"] = {**totals, "per_sample": per_sample}
    for record in scores.values():
        for key, field in (("served_models", "served_model"), ("system_fingerprints", "system_fingerprint")):
            for value in filter(None, (record.get(field) or "").split(",")):
                if value not in api[key]:
                    api[key] = sorted([*api[key], value])
    run_dir.write_manifest(manifest)

