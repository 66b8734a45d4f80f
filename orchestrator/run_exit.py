"""How a run ends: its exit codes, the errors that stop it with a message (no traceback), and the
exit status of a finished session with the line that says why (orchestrator/run.py's docstring)."""

from __future__ import annotations

from . import preflight


EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PREFLIGHT = 2     # nothing was started (or edited): every problem found before is listed
EXIT_SOME_FAILED = 3   # some samples were not edited and judged: failed, or left by a stop
EXIT_NONE = 4          # no sample was judged (edited, with --no-score)


class RunError(Exception):
    """Stops the run with a message for the user (no traceback); `exit_code` says how it ended."""

    exit_code = EXIT_ERROR


class NothingDone(RunError):
    """Problems found before the first edit (preflight, or the services' identities and ranges once
    they are up): every one listed, nothing edited."""

    exit_code = EXIT_PREFLIGHT

    def __init__(self, problems: list[str] | str, lead: str = "nothing was started"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(preflight.PreflightError(self.problems, lead).message())



def exit_status(summary: dict, stages: tuple[str, ...], *, stopped: str = "", allow_failures: bool = False,
                counts: dict[str, int] | None = None) -> tuple[int, str]:
    """The exit code of a finished session and the line that says why, printed last ("" for 0 with
    nothing to say). EXIT_OK: every sample edited and judged (edited, without the judge);
    EXIT_NONE: none was; EXIT_SOME_FAILED: some were not. allow_failures: EXIT_OK instead of those two
    where every sample was tried (nothing left by a stop or unfinished)."""
    total = summary["samples"]
    judged = "score" in stages
    good = summary["scored"] if judged else summary["edited"]
    if good >= total:
        return EXIT_OK, ""
    unfinished = (summary["pending"] if judged else total - summary["edited"] - summary["edit_failures"])
    parts = [f"{status} {n}" for status, n in (counts or {}).items() if n]
    if unfinished:
        parts.append(f"not {'judged' if judged else 'edited'} {unfinished}")
    what = "judged" if judged else "edited"
    count = f"{total - good} of {total} sample(s) not {what}" + (f" ({', '.join(parts)})" if parts else "")
    if stopped:
        count += "; stopped early (see above)"
    if allow_failures and not unfinished and not stopped:
        return EXIT_OK, f"{count}: exit 0 (--allow-failures)"
    code = EXIT_NONE if good == 0 else EXIT_SOME_FAILED
    meaning = f"none was {what}" if code == EXIT_NONE else f"some samples were not {what}"
    hint = "" if unfinished or stopped else "; --allow-failures exits 0 for recorded failures"
    return code, f"{count}: exit {code} ({meaning}{hint})"

