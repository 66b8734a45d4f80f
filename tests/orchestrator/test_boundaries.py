"""The packages' boundaries, read from the code's own imports: the orchestrator and the suites import
of a service only its client; the suites import nothing of the orchestrator or a service; the
services import nothing of the orchestrator; nothing that ships imports the development tools
(tools/, bench/)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imported_modules(package: str) -> dict[str, set[str]]:
    """Each .py file of `package` -> the absolute modules it imports (relative imports resolved)."""
    out: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        here = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                found.add(module)
                found |= {f"{module}.{alias.name}" for alias in node.names}
        out[str(path.relative_to(REPO))] = found
    return out


def offending(package: str, allowed, forbidden_prefixes: tuple[str, ...]) -> list[str]:
    bad = []
    for path, modules in imported_modules(package).items():
        for module in sorted(modules):
            if module.startswith(forbidden_prefixes) and not allowed(module):
                bad.append(f"{path}: {module}")
    return bad


def test_the_orchestrator_imports_only_the_services_clients():
    client = lambda m: m in ("scorer_service", "editor_service") or m.startswith(  # noqa: E731
        ("scorer_service.client", "editor_service.client"))
    assert offending("orchestrator", client, ("scorer_service", "editor_service")) == []


def test_the_suites_import_no_orchestrator_and_no_service():
    assert offending("suites", lambda m: False, ("orchestrator", "scorer_service", "editor_service")) == []


def test_the_services_import_no_orchestrator_and_no_development_tool():
    for package in ("scorer_service", "editor_service", "editfleet_common", "suites", "orchestrator"):
        assert offending(package, lambda m: False, ("tools", "bench")) == []
    for package in ("scorer_service", "editor_service", "editfleet_common"):
        assert offending(package, lambda m: False, ("orchestrator",)) == []
