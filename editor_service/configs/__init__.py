"""Shipped configs of real edit-model architectures (see generate.py)."""
