"""LabBench: a lab's own suite, kept outside editfleet's `suites/` package. The tests load it through
--suites-dir / EDITFLEET_SUITES_DIR and drive it end to end; nothing else in the repository names it."""

from suites.spec import Suite

from . import combine, data, headline, layout

SUITE = Suite(
    name="labbench",
    title=headline.NAME,
    reads="a .json object {\"labbench\": 1, \"items\": [{uid, picture, ask, kind}, ...]}, pictures beside it",
    data=data,
    default_protocol="labbench-0-5",
    protocols=("labbench-0-5",),
    numbers=headline,
    layout=layout,
    rules=combine.RULES,
    source="the lab's own (a test fixture)",
)
