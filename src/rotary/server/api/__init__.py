"""The server API: one executor (``executor.py``) behind thin adapters (``http.py``; GRPC later).

See https://centrifugal.dev/docs/server/server_api.
"""

from rotary.server.api.executor import ApiExecutor
from rotary.server.api.http import register_api
from rotary.server.api.schema import METHODS, ApiError, MethodSpec

__all__ = ["METHODS", "ApiError", "ApiExecutor", "MethodSpec", "register_api"]
