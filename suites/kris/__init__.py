"""KRIS-Bench."""
