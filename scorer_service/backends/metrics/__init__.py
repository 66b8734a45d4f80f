"""The reference-metrics judge backend (judge.backend metrics): L1/L2, CLIP-I, CLIP-T, DINO, CLIP-dir
against a suite's references (MagicBrush, Emu Edit). backend.py: the backend; arithmetic.py: the
metrics' arithmetic and preprocessing."""

from .backend import DEFAULT_CLIP, DEFAULT_DINO, METRICS, MetricsBackend, NotAMetricsProtocol, metric_of

__all__ = ["DEFAULT_CLIP", "DEFAULT_DINO", "METRICS", "MetricsBackend", "NotAMetricsProtocol", "metric_of"]
