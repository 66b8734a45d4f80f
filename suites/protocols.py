"""The judge protocols of the catalog of suites: each suite's protocol files (and any --protocols-dir),
parsed with the catalog's combine rules. The file format itself: suites/shared/protocol.py."""

from __future__ import annotations

from pathlib import Path

from suites.catalog import Catalog, catalog
from suites.shared import protocol as fmt
from suites.shared.protocol import Protocol, ProtocolError, ProtocolRegistry

EXTENSIONS = (".yaml", ".yml", ".json")


def parse_protocol(text: str, path: Path, rules: dict | None = None) -> Protocol:
    """One protocol file's text, with the catalog's combine rules unless `rules` are given."""
    return fmt.parse_protocol(text, path, catalog().rules if rules is None else rules)


def load_protocols(extra_dirs: list[str | Path] = (), default: str = "seed-0-10",
                   suites: Catalog | None = None) -> ProtocolRegistry:
    """The protocol files of every suite in the catalog (`suites`: default, the built-in ones and
    EDITFLEET_SUITES_DIR's), then every file of `extra_dirs` (--protocols-dir)."""
    suites = suites or catalog()
    files = list(suites.protocol_files())
    for directory in map(Path, extra_dirs):
        if not directory.is_dir():
            raise ProtocolError(f"protocols directory {directory} does not exist")
        files += [path for path in sorted(directory.iterdir()) if path.suffix in EXTENSIONS]
    found: dict[str, Protocol] = {}
    for path in files:
        protocol = fmt.parse_protocol(path.read_text(encoding="utf-8"), path, suites.rules)
        if protocol.name in found:
            raise ProtocolError(f"protocol {protocol.name!r} defined twice: {found[protocol.name].path} and {path}")
        found[protocol.name] = protocol
    return ProtocolRegistry(found, default)
