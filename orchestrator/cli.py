"""`python -m orchestrator run|score|report|compare|validate|export|import|suites`.

Every error a user can cause (bad config, bad benchmark, a service that does not come up, an
output dir made with other settings) ends in one clear message and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click


from . import setting_flags, suite_pages
from .benchmark import BenchmarkError, load_benchmark
from .config import ConfigError, as_named, build_config, load_yaml, merge_overrides
from .fleet import FleetError
from .layouts import LayoutError
from .results import ResultsError
from .scoring import ScoringError
from .ui import make_ui
from editfleet_common.version import __version__
from suites.spec import SuiteError

USER_ERRORS = (ConfigError, BenchmarkError, FleetError, ResultsError, ScoringError, LayoutError, SuiteError)


def _fail(exc: BaseException) -> click.ClickException:
    return click.ClickException(str(exc))


def _terminate_as_interrupt(signum, frame):
    # SIGTERM (docker stop, kill): stop the services in order, as for Ctrl-C.
    raise KeyboardInterrupt


def _guarded(fn):
    """Run a command body: user errors become ClickExceptions, Ctrl-C/SIGTERM exit 130."""
    from .run import RunError

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        return fn()
    except RunError as exc:
        if exc.exit_code != 1:  # nothing was started or edited (2): every problem listed, no usage text
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        raise _fail(exc) from None
    except USER_ERRORS as exc:
        raise _fail(exc) from None
    except OSError as exc:  # disk full, permissions, a file removed under the run: a message, not a traceback
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    except KeyboardInterrupt:
        click.echo("\nInterrupted: services stopped. Rerun the same command to resume.", err=True)
        sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", "-V", prog_name="orchestrator",
                      message="%(prog)s (editfleet) %(version)s")
@click.option("--suites-dir", multiple=True, type=click.Path(file_okay=False),
              help="A lab's own suite folder (or a folder of them), beside the built-in suites (repeatable; "
                   "also EDITFLEET_SUITES_DIR, or suites_dir in a run config).")
def main(suites_dir):
    """editfleet orchestrator: edit a benchmark on a fleet of editors, judge every edit, report."""
    if suites_dir:
        from suites.catalog import use

        use(*suites_dir)


def _run_options(fn):
    # the run config's keys, then the services' settings (setting_flags: each flag defined once)
    fn = setting_flags.options(setting_flags.RUN_FLAGS)(fn)
    fn = setting_flags.options(setting_flags.RUN_CONFIG_FLAGS)(fn)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML run config.")(fn)


def config_from_flags(config_path, **flags) -> "RunConfig":  # noqa: F821
    data = load_yaml(config_path) if config_path else {}
    overrides = setting_flags.overrides((*setting_flags.RUN_CONFIG_FLAGS, *setting_flags.RUN_FLAGS,
                                         setting_flags.RUN_STOP_AFTER_FAILURES), flags)
    gpus, editors = overrides.get("devices.gpus"), overrides.get("devices.editors")
    if gpus is not None or editors is not None:
        if gpus is not None and editors is not None:
            raise click.UsageError("give --gpus or --editors, not both")
        # A device flag replaces the config's device choice rather than adding to it.
        data = {**data, "devices": {k: v for k, v in (data.get("devices") or {}).items() if k not in ("gpus", "editors")}}
    if data.get("_origin") is None:
        data["_origin"] = "command line"
    return build_config(merge_overrides(data, overrides)).absolutize()


def _require(config, *keys: str) -> None:
    missing = []
    for key in keys:
        section, name = key.split(".")
        if getattr(getattr(config, section), name) in (None, ""):
            missing.append(key)
    if missing:
        flags = {flag.key: flag.flag for flag in (*setting_flags.RUN_CONFIG_FLAGS, *setting_flags.RUN_FLAGS)}
        raise click.UsageError(
            "missing: " + ", ".join(f"{k} (config) / {flags.get(k, '')}" for k in missing)
        )


@main.command()
@_run_options
@click.option("--no-score", is_flag=True, help="Edit only; judge later with `run` again or `score`.")
@click.option("--retry-failed", is_flag=True, help="Redo samples whose edit or score failed for good.")
@click.option("--dry-run", is_flag=True, help="Check everything and print the plan (samples, editors, judge, protocol, "
                                              "questions, a time estimate); start nothing.")
@click.option("--allow-failures", is_flag=True, help="Exit 0 when every sample was tried, even if some failed "
                                                     "(default: 3 some failed, 4 none judged).")
@setting_flags.RUN_STOP_AFTER_FAILURES.option()
def run(config_path, no_score, retry_failed, dry_run, allow_failures, **flags):
    """Edit every sample of a benchmark, judge every edit, write summary and report.

    Rerunning on the same --output resumes: finished edits and scores are kept, nothing is done twice.
    Exit codes: 0 every sample edited and judged, 2 nothing started (every problem listed), 3 some
    samples failed, 4 none was judged, 1 another error.
    """

    def body():
        from .run import execute

        config = config_from_flags(config_path, **flags)
        needed = ["benchmark.path", "editor.model"]
        if config.fleet.kind == "static":
            needed = ["benchmark.path"]
        if not no_score and config.fleet.kind != "static":
            needed.append("judge.model")
        _require(config, *needed)
        ui = make_ui(config.progress)
        result = execute(config, stages=("edit",) if no_score else ("edit", "score"), retry_failed=retry_failed, ui=ui,
                         dry_run=dry_run, allow_failures=allow_failures,
                         stop_after_failures=config.stop_after_failures)
        sys.exit(result.exit_code)

    _guarded(body)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@setting_flags.options(setting_flags.SCORE_FLAGS)
@setting_flags.options(setting_flags.SCORE_CONFIG_FLAGS)
@click.option("--output", "-o", help="Where the new scores go (default: RUN_DIR/rejudge/<judge>-<protocol>).")
@click.option("--label", help="Name of the default output folder.")
@click.option("--retry-failed", is_flag=True)
@click.option("--allow-failures", is_flag=True, help="Exit 0 when every edit was judged, even if some judgements "
                                                     "or edits failed (default: 3 some failed, 4 none judged).")
@setting_flags.SCORE_STOP_AFTER_FAILURES.option()
def score(run_dir, output, label, retry_failed, allow_failures, **judge_flags):
    """Re-judge the saved edits of RUN_DIR with another judge or protocol (no editing).

    The new scores.jsonl, summary.json and report.html go to their own folder, which reads the
    edits from RUN_DIR; rerunning resumes like `run`.
    """

    def body():
        from .run import config_from_run_dir, execute

        source = Path(run_dir)
        config, manifest = config_from_run_dir(source)
        if manifest.get("rejudge_of"):
            raise click.UsageError(f"{source} is itself a re-judge folder; give the run's own output dir")
        data = merge_overrides(as_named(config), {  # another protocol: its own reply budget, unless one is named
            **setting_flags.overrides(setting_flags.SCORE_FLAGS, judge_flags),
            **setting_flags.overrides((*setting_flags.SCORE_CONFIG_FLAGS, setting_flags.SCORE_STOP_AFTER_FAILURES),
                                      judge_flags),
        })
        new = build_config({**data, "_origin": "command line"})
        if new.fleet.kind != "static":  # an edit-only run (`run --no-score`) may have recorded no judge
            _require(new, "judge.model")
        name = label or "-".join(filter(None, [Path(new.judge.model or "judge").name, new.judge.protocol or "default"]))
        new.output = output or str(source / "rejudge" / name)
        if Path(new.output).resolve() == source.resolve():
            raise click.UsageError("--output must differ from RUN_DIR (re-judged scores get their own folder)")
        ui = make_ui(new.progress)
        result = execute(new, stages=("score",), retry_failed=retry_failed, ui=ui, edits_from=source.resolve(),
                         extra_manifest={"rejudge_of": str(source.resolve()), "editor": manifest.get("editor")},
                         allow_failures=allow_failures, stop_after_failures=new.stop_after_failures)
        sys.exit(result.exit_code)

    _guarded(body)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
def report(run_dir):
    """Rebuild summary.json and report.html of RUN_DIR (a run or a re-judge folder) from its files."""

    def body():
        from .run import rebuild_report

        rebuild_report(Path(run_dir), make_ui("plain"))

    _guarded(body)


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Where compare.html, compare.json and compare.csv go.")
@click.option("--baseline", help="The run the others are compared with: its label, its RUN_DIR or its position "
                                 "(1 = first; default: the first).")
@click.option("--label", "labels", multiple=True, help="A name per run, in order (default: the editor model's name).")
@click.option("--allow-different", is_flag=True,
              help="Compare runs of different benchmarks / protocols anyway (the page lists what differs).")
@click.option("--resamples", type=click.IntRange(min=100), default=2000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed (same files + seed: same intervals).")
def compare(run_dirs, output, baseline, labels, allow_different, resamples, seed):
    """Compare runs of one benchmark and judge protocol: means with 95% bootstrap intervals per
    category, paired differences from a baseline, ranks, judge agreement, a per-sample grid."""
    from .compare import CompareError, compare as build_compare, overall_table

    def body():
        try:
            data = build_compare([Path(p) for p in run_dirs], Path(output), baseline=baseline, labels=list(labels),
                                 allow_different=allow_different, resamples=resamples, seed=seed,
                                 warn=lambda text: click.echo(text, err=True))
        except CompareError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Baseline: {data['baseline']}; headline: {data['headline']} "
                   f"(95% bootstrap intervals, {resamples} resamples, seed {seed})")
        click.echo(overall_table(data))
        for a in data["judge_agreement"]:
            click.echo(f"Judge agreement {a['judge']} vs {a['against']} ({a['n']} samples): "
                       f"Spearman {_fmt(a['spearman'])}, Kendall {_fmt(a['kendall'])}, mean |diff| {_fmt(a['mean_abs_diff'])}")
        out = Path(output)
        click.echo(f"Compare: {out / 'compare.html'} (and compare.json, compare.csv)")

    _guarded(body)


def _fmt(value) -> str:
    return f"{value:.3f}" if value is not None else "n/a"


@main.command()
@click.argument("benchmark", type=click.Path())
@click.option("--format", "fmt", default="auto", help="The suite whose data this is (default: detected).")
@setting_flags.options((setting_flags.LANGUAGE_FLAG, setting_flags.IMAGE_ROOT_FLAG))  # unset: the suite's default
def validate(benchmark, fmt, language, image_root):
    """Check a benchmark file or folder (images, ids, instructions, paths) without starting anything."""

    def body():
        b = load_benchmark(benchmark, fmt, options={"language": language, "image_root": image_root})
        cats = ", ".join(f"{c} ({n})" for c, n in b.describe()["categories"].items())
        click.echo(f"{b.path}: {b.format} format, {len(b.samples)} samples OK; categories: {cats}")
        chains = chains_text(b.samples)
        if chains:
            click.echo(chains)

    _guarded(body)


def chains_text(samples) -> str:
    """What `validate` says of the multi-turn chains (input_from): how many, how long, "" for none."""
    from suites.shared.samples import chain_turns

    turns = chain_turns(samples)
    lengths: dict[int, int] = {}  # turns -> chains that long: a chain ends at a turn no other follows
    followed = {s.input_from for s in samples if s.input_from}
    for sample_id, turn in turns.items():
        if sample_id not in followed:
            lengths[turn] = lengths.get(turn, 0) + 1
    if not lengths:
        return ""
    count = sum(lengths.values())
    shape = ", ".join(f"{n} of {t} turns" for t, n in sorted(lengths.items()))
    chained = sum(1 for s in samples if s.input_from)
    return (f"chains: {count} ({shape}); {len(turns)} samples in them, "
            f"{chained} edited from the edit of the turn before (input_from)")


@main.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--layout", required=True, help="The suite's output layout (a suite's name; `orchestrator suites`).")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False), help="Folder to write the layout in.")
@click.option("--method", help="The method's folder name in the layout (default: RUN_DIR's name).")
def export_cmd(run_dir, layout, to, method):
    """Write RUN_DIR's edits in a suite's own layout, so the suite's official scorer runs unchanged on them.

    Missing edits (failed, not done) are listed, never filled with the source image.
    """

    def body():
        from .transfer import export_run

        export_run(Path(run_dir), layout, Path(to), method, make_ui("plain"))

    _guarded(body)


@main.command("import")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@click.option("--layout", required=True, help="The suite's output layout (a suite's name; `orchestrator suites`).")
@click.option("--benchmark", required=True, help="The benchmark the edits were made for.")
@setting_flags.options((setting_flags.LANGUAGE_FLAG, setting_flags.IMAGE_ROOT_FLAG))
@click.option("--method", help="The method's folder in FOLDER (default: FOLDER itself, or its only method folder).")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="The run folder to create.")
def import_cmd(folder, layout, benchmark, language, image_root, method, output):
    """Turn edits made elsewhere, in a suite's layout, into a run folder that `score` and `report` judge.

    Each edit's provenance (imported, path, sha256) is recorded; missing or unreadable files are listed.
    """

    def body():
        from .transfer import import_run

        import_run(Path(folder), layout, benchmark, {"language": language, "image_root": image_root}, method,
                   Path(output), make_ui("plain"))

    _guarded(body)


@main.group("suites", invoke_without_command=True)
@click.pass_context
def suites_cmd(ctx):
    """The benchmark suites found: built-in and a lab's own (--suites-dir, EDITFLEET_SUITES_DIR)."""
    if ctx.invoked_subcommand is None:
        _guarded(lambda: click.echo(suite_pages.listing()))


@suites_cmd.command("show")
@click.argument("name")
def suites_show(name):
    """One suite's settings and its README."""
    _guarded(lambda: click.echo(suite_pages.show(name)))


def _arena_flags():
    from .arena.command import ARENA_FLAGS

    return setting_flags.options(ARENA_FLAGS)


@main.command()
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="The arena folder: judgments.jsonl, arena.json, leaderboard.csv, judgments.parquet, arena.html "
                   "(rerun on it to resume, or with more runs to add players: only their pairs are judged).")
@click.option("--label", "labels", multiple=True, help="A player name per run, in order (default: an imported run's "
                                                       "model folder, else the run folder's name).")
@click.option("--protocol", help="A pairwise judge protocol (default: the suite's own, else geditbench-v2).")
@click.option("--pairs", type=click.Choice(["all", "adaptive"]), default="all", show_default=True,
              help="all: every pair of players on every sample; adaptive: the pairs that most cut the ranking's "
                   "uncertainty, in rounds, up to --budget.")
@click.option("--budget", type=click.IntRange(min=1), help="--pairs adaptive: the most pairs to judge.")
@click.option("--round-size", type=click.IntRange(min=1), help="--pairs adaptive: pairs per round (default: the "
                                                               "judges' batch x replicas, at least 8).")
@click.option("--top-k", type=click.IntRange(min=1), help="--pairs adaptive: only the top K's order matters.")
@click.option("--orders", type=click.Choice(["one", "both"]),
              help="Ask each question in one order or both (A and B swapped too; default: the protocol's).")
@click.option("--dimensions", help="Only these questions of the protocol, comma-separated (e.g. VC).")
@click.option("--matches", multiple=True, metavar="PATH",
              help="GEditBench v2 match files (a results folder, a file in eval_<dim>_metadata*/, or DIM=FILE; "
                   "repeatable): ranked alone (no RUN_DIR), or their verdicts among the players kept as judged.")
@click.option("--alpha", type=click.FloatRange(min=0), default=1.0, show_default=True, help="The fit's L2 penalty.")
@click.option("--weighting", type=click.Choice(["balanced", "by_matches"]), default="balanced", show_default=True,
              help="Dimension weights.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap rounds over prompts for the intervals.")
@click.option("--seed", type=int, default=42, show_default=True, help="Bootstrap (and adaptive pairing) seed.")
@click.option("--examples", type=click.IntRange(min=0), default=8, show_default=True,
              help="Example pairs shown on the page.")
@_arena_flags()
@click.option("--gpu", type=int, help="GPU for the judge (default: CPU).")
@click.option("--judge-replicas", type=click.IntRange(min=1), help="Judge processes (default: one).")
@click.option("--fleet", type=click.Choice(["local", "static", "kubernetes"]))
@click.option("--scorer-address", help="static fleet: the scorer HOST:PORT.")
@click.option("--progress", type=click.Choice(["auto", "bars", "plain"]), default="plain", show_default=True)
def arena(run_dirs, output, labels, protocol, pairs, budget, round_size, top_k, orders, dimensions, matches, alpha,
          weighting, bootstrap, seed, examples, gpu, judge_replicas, fleet, scorer_address, progress, **judge_flags):
    """Rank runs of one benchmark head to head: pairs of their edits judged by a pairwise protocol,
    ratings by GEditBench v2's Davidson-Bradley-Terry fit with bootstrap intervals over prompts.

    Each RUN_DIR is a player (runs of the same benchmark and samples; otherwise refused, naming what
    differs). Rerunning on the same --output resumes: every judgment is kept, nothing judged twice.
    With --matches and no RUN_DIR: GEditBench v2 match files ranked directly.
    """
    from .arena.command import ARENA_FLAGS, ArenaOptions, run_arena
    from .arena.players import ArenaError
    from .arena.ratings import ArenaConfig

    def body():
        overrides = {**setting_flags.overrides(ARENA_FLAGS, judge_flags), "devices.judge_gpu": gpu,
                     "judge.replicas": judge_replicas, "fleet.kind": fleet, "fleet.scorer_address": scorer_address}
        options = ArenaOptions(
            run_dirs=[Path(p) for p in run_dirs], output=Path(output), labels=list(labels), protocol=protocol,
            pairs=pairs, budget=budget, round_size=round_size, top_k=top_k, orders=orders,
            dimensions=[d.strip() for d in dimensions.split(",") if d.strip()] if dimensions else None,
            matches=list(matches), fit=ArenaConfig(alpha=alpha, weighting=weighting, bootstrap=bootstrap, seed=seed),
            judge_overrides=overrides, progress=progress, examples=examples)
        try:
            run_arena(options, make_ui(progress))
        except ArenaError as exc:
            raise click.ClickException(str(exc)) from None

    _guarded(body)


if __name__ == "__main__":
    main()
