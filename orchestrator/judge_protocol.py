"""The run's judge protocol as the judge will read it: the files of its --protocols-dir (the judge's
server_args), then every suite's (as the scorer reads them). Read by the config (a protocol's reply
budget) and the preflight (whether it exists and can judge the samples)."""

from __future__ import annotations

from pathlib import Path

from suites.catalog import catalog
from suites.protocols import EXTENSIONS, parse_protocol
from suites.shared.protocol import Protocol, ProtocolError


def protocol_files(judge) -> list[Path]:
    """The protocol files the run's judge reads: its --protocols-dir, then the suites' (as the scorer)."""
    args = judge.server_args
    dirs = [Path(args[i + 1]) for i, a in enumerate(args[:-1]) if a == "--protocols-dir"]
    files = [p for d in dirs if d.is_dir() for p in sorted(d.iterdir()) if p.suffix in EXTENSIONS]
    return files + catalog().protocol_files()


def find_protocol(judge) -> Protocol | None:
    """The run's protocol as the judge will read it; None where no file of that name is here."""
    for path in protocol_files(judge):
        if path.stem == judge.protocol:
            try:
                return parse_protocol(path.read_text(encoding="utf-8"), path)
            except (OSError, ProtocolError):
                return None  # the judge names a broken file at its start
    return None
