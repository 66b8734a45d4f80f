"""Benchmark suites: one folder per suite (its data loader, judge protocol, scoring rule, headline
numbers and export/import layout), what several suites share in `suites/shared/`. Neither the
orchestrator nor the scorer owns a suite: both read them from here."""
