"""The API editor's failures of its own: a refusal (ProviderRefused), a reply without an image (NoImage),
a request that kept failing after every retry (ApiFailure); each with the gRPC status it is answered with."""

from __future__ import annotations

from editfleet_common.errors import EditfleetError


class ProviderRefused(EditfleetError):
    """The provider refused the edit (content policy, safety filter): a failure of its own kind, with the
    provider's message; never replaced by an image."""

    grpc_code = "PERMISSION_DENIED"

    def __init__(self, message: str, provider_code: str = "content_policy_violation"):
        super().__init__(message)
        self.provider_code = provider_code  # what the HTTP route answers with (http_api.error_for)


class NoImage(EditfleetError):
    """The provider answered, without an image (a chat model that replied in words only)."""

    grpc_code = "FAILED_PRECONDITION"


class ApiFailure(EditfleetError):
    """A request that kept failing (429, 5xx, timeouts, cut bodies) after every retry."""

    grpc_code = "UNAVAILABLE"
