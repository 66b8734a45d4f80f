"""The scorer service: a VLM judge over gRPC, batched, with explicit failures.

This package's top level stays free of torch: the orchestrator's environment imports
`scorer_service.client` (and `suites.shared.protocol`) without having torch installed.
`judge`, `server` and `__main__` import torch and run only in the scorer environment.
"""
