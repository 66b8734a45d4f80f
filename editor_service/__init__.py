"""Editor service: one diffusers edit pipeline per device behind gRPC (no torch import here)."""
