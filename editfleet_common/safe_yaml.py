"""YAML read with bounds: run configs and judge protocol files are small, so anything that is not is
refused in one line before a single object is built.

Aliases are the danger: `yaml.safe_load` builds a "billion laughs" file (nine aliases of nine aliases
of ... of a list, nine levels) in microseconds, as one list shared a billion times over, and whatever
walks it afterwards (`dataclasses.asdict`, a deep copy, JSON) then runs for ever or runs out of memory.
So the parser's events are walked first, without building anything: every node counts as the number
of nodes it stands for once aliases are expanded (an alias counts as the whole node it names), and the
text is refused where that total passes `max_nodes`, where an alias names a node that contains it
(a recursive structure, endless once expanded), where the nesting goes deeper than `max_depth`, or
where the text is longer than `max_bytes`. Only then is it loaded (SafeLoader, libyaml's where present).

Errors are YamlLimitError (a ValueError) without the file's name: the caller says which file.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_YAML_BYTES = 1 << 20     # 1 MiB: a run config is ~1 KB, the largest shipped protocol file ~35 KB
MAX_YAML_NODES = 100_000     # nodes once aliases are expanded (the largest shipped protocol has ~300)
MAX_YAML_DEPTH = 64          # nested collections


class YamlLimitError(ValueError):
    """A YAML text over a bound (size, expanded nodes, nesting) or with a recursive alias."""


def read_text(path: str | os.PathLike, *, max_bytes: int = MAX_YAML_BYTES) -> str:
    """A text file of at most max_bytes, refused from its size before it is read (OSError,
    UnicodeDecodeError and YamlLimitError as they come)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise YamlLimitError(f"{size} bytes, over the limit of {max_bytes} bytes")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while read, or a file whose size says nothing (a pipe)
        raise YamlLimitError(f"over the limit of {max_bytes} bytes")
    return data.decode("utf-8")


def check(text: str, *, max_bytes: int = MAX_YAML_BYTES, max_nodes: int = MAX_YAML_NODES,
          max_depth: int = MAX_YAML_DEPTH) -> int:
    """The number of nodes `text` expands to; YamlLimitError where it passes a bound (see the module
    docstring). Syntax errors are yaml.YAMLError, as yaml.safe_load raises them."""
    import yaml

    size = len(text.encode("utf-8", errors="replace")) if isinstance(text, str) else len(text)
    if size > max_bytes:
        raise YamlLimitError(f"{size} bytes, over the limit of {max_bytes} bytes")
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    sizes: dict[str, int] = {}       # anchor -> the expanded node count of the node it names
    stack: list[list] = [[None, 0]]  # the document, then its open collections: [anchor, nodes so far]

    def add(count: int) -> None:
        stack[-1][1] += count
        if stack[-1][1] > max_nodes:
            raise YamlLimitError(f"more than {max_nodes} nodes once its aliases are expanded "
                                 "(an alias 'bomb'?)")

    loader = loader_class(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in sizes:
                    if any(entry[0] == event.anchor for entry in stack):
                        raise YamlLimitError(f"the alias *{event.anchor} is inside the node it names "
                                             "(a recursive structure)")
                    add(1)  # an undefined anchor: the load names it
                else:
                    add(sizes[event.anchor])
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor:
                    sizes[event.anchor] = 1
                add(1)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(stack) > max_depth:
                    raise YamlLimitError(f"nested deeper than {max_depth} levels")
                stack.append([event.anchor, 1])
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, count = stack.pop()
                if anchor:
                    sizes[anchor] = count
                add(count)
    finally:
        loader.dispose()
    return stack[0][1]


def safe_load(text: str, **limits):
    """yaml.safe_load(text) once `check` passes (the same limits as keywords)."""
    import yaml

    check(text, **limits)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_file(path: str | os.PathLike, *, max_bytes: int = MAX_YAML_BYTES, **limits):
    """safe_load of a file read with read_text (its size refused before it is read)."""
    return safe_load(read_text(Path(path), max_bytes=max_bytes), max_bytes=max_bytes, **limits)


__all__ = ["MAX_YAML_BYTES", "MAX_YAML_NODES", "MAX_YAML_DEPTH", "YamlLimitError", "check", "read_text",
           "safe_load", "load_file"]
