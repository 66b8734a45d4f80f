"""`orchestrator suites` and `orchestrator suites show NAME`: the suites found, as text."""

from __future__ import annotations

from suites.catalog import catalog
from suites.spec import Suite


def _where(suite: Suite) -> str:
    return "built-in" if suite.builtin else str(suite.folder)


def _protocols(suite: Suite) -> str:
    others = [p for p in suite.protocols if p != suite.default_protocol]
    return suite.default_protocol + " (default)" + "".join(f", {p}" for p in others)


def _headline(suite: Suite) -> str:
    kind = "per-category mean" if suite.headline_mean == "macro_mean" else "pooled mean"
    own = f"{suite.title}'s own numbers" if suite.numbers is not None else "no numbers of its own"
    return f"{own}; overall: {kind}"


def listing() -> str:
    found = catalog()
    lines = [f"{len(found.suites)} suite(s):"]
    for suite in found.suites.values():
        lines += [f"  {suite.name}  {suite.title}  [{_where(suite)}]",
                  f"    reads:     {suite.reads}",
                  f"    protocols: {_protocols(suite)}",
                  f"    headline:  {_headline(suite)}",
                  *([f"    source:    {suite.source}"] if suite.source else [])]
    lines.append("orchestrator suites show NAME: one suite's settings and README")
    return "\n".join(lines)


def show(name: str) -> str:
    suite = catalog().get(name)
    rows = [
        ("name", suite.name), ("title", suite.title), ("folder", str(suite.folder)), ("from", _where(suite)),
        ("reads", suite.reads), ("benchmark is", ("a folder or a file" if suite.takes_file else "a folder") if suite.is_folder else "a file"),
        ("options", ", ".join(f"benchmark.{o}" for o in suite.options) or "none"),
        ("protocols", _protocols(suite)),
        ("protocol files", ", ".join(p.name for p in suite.protocol_paths) or "none (its default is another suite's)"),
        ("combine rules", ", ".join(suite.rules) or "none of its own"),
        ("headline", _headline(suite)),
        ("export/import layout", suite.layout.DESCRIPTION if suite.layout is not None else "none"),
        ("source", suite.source or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    text = "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
    readme = suite.folder / "README.md"
    return text + ("\n\n" + readme.read_text(encoding="utf-8") if readme.is_file() else "\n\n(no README.md in its folder)")
