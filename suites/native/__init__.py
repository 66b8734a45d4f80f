"""editfleet's native JSON Lines format: a lab's own samples, judged with the seed's 0-10 protocol."""

from suites.spec import Suite

from . import data

SUITE = Suite(
    name="native",
    title="native",
    reads="a .jsonl with id / image (or images) / instruction / category per line",
    data=data,
    default_protocol="seed-0-10",
    source="editfleet (docs/suites.md: the native format)",
    detect_order=80,
)
