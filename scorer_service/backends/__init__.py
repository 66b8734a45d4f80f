"""Judge backends: who answers the protocol's questions. Every backend takes the same prepared
samples (protocol, category, variables, decoded images) and returns the same ScoreOutcomes, so the
gRPC service, its ScoreStream contract and the orchestrator do not depend on which one runs.

    transformers  (default) a local chat VLM, batched on one device: scorer_service.judge.Judge
    openai        any OpenAI-compatible chat-completions endpoint (OpenAI, Azure OpenAI, vLLM, SGLang,
                  `transformers serve`, gateways): openai_api.ApiJudge

What the service needs from a backend (both classes have it):
    identity: ModelIdentity          recorded in GetInfo and the run's manifest
    max_attempts: int                2: re-ask once with the protocol's strict suffix
    score(samples) -> outcomes       one ScoreOutcome per PreparedSample, same order; thread-safe
    warm_up(sample) -> outcome       before serving (for an API: the key is checked here)
    batches_in_flight: int           how many score() calls the batcher runs at once
    ready_for_next() -> bool         whether a new batch would start at once
"""

BACKENDS = ("transformers", "openai")
