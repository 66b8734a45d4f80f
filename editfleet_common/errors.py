"""Domain errors that the gRPC layer turns into status codes in one place (see grpc_server).

Service cores raise these and know nothing of gRPC; the interceptor maps `grpc_code` names
onto `grpc.StatusCode` members.
"""


class EditfleetError(Exception):
    grpc_code = "INTERNAL"


class InvalidInput(EditfleetError):
    grpc_code = "INVALID_ARGUMENT"


class TooLarge(EditfleetError):
    grpc_code = "RESOURCE_EXHAUSTED"


class Overloaded(EditfleetError):
    grpc_code = "RESOURCE_EXHAUSTED"


class NotReady(EditfleetError):
    grpc_code = "UNAVAILABLE"


class Cancelled(EditfleetError):
    grpc_code = "CANCELLED"


class DeadlineExceeded(EditfleetError):
    grpc_code = "DEADLINE_EXCEEDED"


class NotFound(EditfleetError):
    grpc_code = "NOT_FOUND"
