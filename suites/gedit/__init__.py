"""GEdit-Bench (VIEScore judging)."""
