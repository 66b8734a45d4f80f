"""Code shared by the editfleet services: errors, image decoding and the gRPC server frame.

Kept free of torch so every environment (editor, scorer, orchestrator) can import it.
"""
