"""The GRPC server API: Centrifugo's ``centrifugal.centrifugo.api.CentrifugoApi`` on its own port.

Every method the HTTP API serves is served here by the same :class:`ApiExecutor`; this module only
turns the Protobuf messages of rotary's ``proto/rotary/api.proto`` (Centrifugo's wire contract) into
the executor's request dataclasses and its results back. The checks are Centrifugo's: with
``grpc_api.key`` set, every call of the service needs the metadata ``authorization: apikey <key>``
(else UNAUTHENTICATED "unauthenticated"); a method's error is the response's ``error`` field, or,
in transport error mode (``grpc_api.error_mode`` or the call's ``x-centrifugo-error-mode:
transport`` metadata), a GRPC status mapped from the code with the ``Error`` message as its
detail. Centrifugo PRO's methods answer UNIMPLEMENTED as the open-source server does.
See https://centrifugal.dev/docs/server/server_api#grpc-api.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import grpc  # type: ignore[import-untyped]
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2  # type: ignore[import-untyped]
from grpc import aio
from grpc_reflection.v1alpha import reflection, reflection_pb2  # type: ignore[import-untyped]
from grpc_reflection.v1alpha._async import ReflectionServicer  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from rotary.server.api._pb import api_pb2
from rotary.server.api.executor import ApiExecutor
from rotary.server.api.schema import METHODS, ApiError, BatchReply, Command, Outcome
from rotary.server.config.schema import Config
from rotary.server.config.schema_transports import GrpcAPIConfig
from rotary.server.pem import read_pem

log = logging.getLogger("rotary.server.api.grpc")

SERVICE: Final = api_pb2.DESCRIPTOR.services_by_name["CentrifugoApi"]
"""The service as api.proto declares it; its full name is Centrifugo's."""

TRANSPORT_ERROR_MODE: Final = "transport"
ERROR_MODE_METADATA: Final = "x-centrifugo-error-mode"
API_KEY_METADATA: Final = "authorization"
API_KEY_SCHEME: Final = "apikey "
REFLECTION_SERVICES: Final = ("grpc.reflection.v1.ServerReflection", reflection.SERVICE_NAME)
"""grpc-go serves reflection under both names; v1 has v1alpha's messages under another package."""

GRPC_STATUS: Final[dict[int, grpc.StatusCode]] = {
    100: grpc.StatusCode.INTERNAL,
    102: grpc.StatusCode.NOT_FOUND,
    104: grpc.StatusCode.NOT_FOUND,
    107: grpc.StatusCode.INVALID_ARGUMENT,
    108: grpc.StatusCode.INVALID_ARGUMENT,
    112: grpc.StatusCode.OUT_OF_RANGE,
    113: grpc.StatusCode.ALREADY_EXISTS,
}
"""API error code -> GRPC status in transport error mode; any other code is INTERNAL."""


def method_name(rpc: str) -> str:
    """The METHODS name of a service method: ``PresenceStats`` -> ``presence_stats``, ``RPC`` -> ``rpc``."""
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", rpc).lower()


# --- messages <-> dataclasses -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    read: Callable[[Any], Any]


def _reader(name: str, hint: Any) -> Callable[[Message], Any]:
    """How one request field is read from its message: scalars as they are, containers copied,
    nested messages only when present (an absent one is None, as JSON's missing key)."""
    if hint == list[Command | None]:
        return lambda message: [_command(command) for command in getattr(message, name)]
    if hint in (dict[str, str], list[str]):
        container = typing.get_origin(hint)
        return lambda message: container(getattr(message, name))
    nested = [arg for arg in typing.get_args(hint) if isinstance(arg, type) and dataclasses.is_dataclass(arg)]
    if nested:
        (cls,) = nested
        return lambda message: decode(cls, getattr(message, name)) if message.HasField(name) else None
    return lambda message: getattr(message, name)


_REQUEST_FIELDS: dict[type[Any], tuple[_Field, ...]] = {}


def _request_fields(cls: type[Any]) -> tuple[_Field, ...]:
    fields = _REQUEST_FIELDS.get(cls)
    if fields is None:
        hints = typing.get_type_hints(cls)
        fields = tuple(_Field(f.name, _reader(f.name, hints[f.name])) for f in dataclasses.fields(cls))
        _REQUEST_FIELDS[cls] = fields
    return fields


def decode(cls: type[Any], message: Message) -> Any:
    """The request dataclass ``cls`` from its message; fields the dataclass lacks (PRO) are ignored."""
    return cls(**{field.name: field.read(message) for field in _request_fields(cls)})


def _command(message: api_pb2.Command) -> Command:
    """A batch command: the first method (in METHODS order, Centrifugo's) whose field is set;
    none set, or only a PRO method's, is answered with 104 by the executor."""
    for name, spec in METHODS.items():
        if name != "batch" and message.HasField(name):
            return Command(name, decode(spec.request, getattr(message, name)))
    return Command()


def fill(message: Message, value: Any) -> None:
    """Writes a result dataclass (or an Outcome or a batch reply) into ``message``."""
    if isinstance(value, Outcome):
        _fill_outcome(message, value.error, value.result)
    elif isinstance(value, BatchReply):
        _fill_outcome(message, value.outcome.error, value.outcome.result, value.method)
    else:
        for f in dataclasses.fields(value):
            _set(message, f.name, getattr(value, f.name))


def _fill_outcome(message: Message, error: ApiError | None, result: Any, field: str = "result") -> None:
    if error is not None:
        _set_error(message, error)
    else:
        _set(message, field, result)


def _set_error(message: Any, error: ApiError) -> None:
    message.error.code = error.code
    message.error.message = error.message


def _set(message: Any, name: str, item: Any) -> None:
    if item is None:
        return
    if isinstance(item, list):
        target = getattr(message, name)
        for element in item:
            if dataclasses.is_dataclass(element):
                fill(target.add(), element)
            else:
                target.append(element)
    elif isinstance(item, dict):
        target = getattr(message, name)
        for key, element in item.items():
            if dataclasses.is_dataclass(element):
                fill(target[key], element)
            else:
                target[key] = element
    elif dataclasses.is_dataclass(item):
        target = getattr(message, name)
        target.SetInParent()  # present even when empty, as Centrifugo's results are
        fill(target, item)
    else:
        setattr(message, name, item)


# --- the service ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrpcApiTLS:
    """The PEM bytes of the server's certificate and key, and of the CA that client certificates need."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes = b""


def _first(context: aio.ServicerContext[Any, Any], key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return str(value)
    return None


class GrpcApi:
    """The handlers of every method of the service, bound to one executor and one config section."""

    def __init__(self, executor: ApiExecutor, settings: GrpcAPIConfig) -> None:
        self._executor = executor
        self._settings = settings
        self._key = (API_KEY_SCHEME + settings.key).encode() if settings.key else None

    async def _authorize(self, context: aio.ServicerContext[Any, Any]) -> None:
        """Centrifugo compares the first ``authorization`` value with ``apikey <key>``, whole."""
        if self._key is None:
            return
        given = _first(context, API_KEY_METADATA)
        if given is None or not hmac.compare_digest(given.encode(), self._key):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")

    def _transport_mode(self, context: aio.ServicerContext[Any, Any]) -> bool:
        return (
            self._settings.error_mode == TRANSPORT_ERROR_MODE
            or _first(context, ERROR_MODE_METADATA) == TRANSPORT_ERROR_MODE
        )

    def served(self, name: str, rpc: str) -> grpc.RpcMethodHandler:
        """The handler of a method the executor runs."""
        descriptor = SERVICE.methods_by_name[rpc]
        request_type = METHODS[name].request
        response_class = getattr(api_pb2, descriptor.output_type.name)
        has_error_field = "error" in response_class.DESCRIPTOR.fields_by_name

        async def call(message: Message, context: aio.ServicerContext[Any, Any]) -> Message:
            await self._authorize(context)
            response: Message = response_class()
            try:
                result = await self._executor.execute(name, decode(request_type, message))
            except ApiError as error:
                if not has_error_field or self._transport_mode(context):  # a batch has no error field
                    await context.abort_with_status(_error_status(error))
                _set_error(response, error)
                return response
            if has_error_field:
                _set(response, "result", result)  # present even when empty, as Centrifugo's is
            else:
                fill(response, result)
            return response

        return _unary(call, descriptor)

    def unimplemented(self, rpc: str) -> grpc.RpcMethodHandler:
        """A Centrifugo PRO method: the key is checked first, then UNIMPLEMENTED, as Centrifugo does."""
        descriptor = SERVICE.methods_by_name[rpc]

        async def call(message: Message, context: aio.ServicerContext[Any, Any]) -> Message:
            await self._authorize(context)
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"method {rpc} not implemented")
            raise AssertionError("abort returned")  # pragma: no cover

        return _unary(call, descriptor)

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """Every method of the service: the executor's, and Centrifugo PRO's."""
        names = {rpc: method_name(rpc) for rpc in SERVICE.methods_by_name}
        return {
            rpc: self.served(name, rpc) if name in METHODS else self.unimplemented(rpc)
            for rpc, name in names.items()
        }


def _unary(
    call: Callable[[Message, aio.ServicerContext[Any, Any]], Awaitable[Message]], descriptor: Any
) -> grpc.RpcMethodHandler:
    request_class = getattr(api_pb2, descriptor.input_type.name)
    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=request_class.FromString, response_serializer=_serialize
    )


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _error_status(error: ApiError) -> grpc.Status:
    """The status Centrifugo sends: the mapped code, the error's message, the Error as detail."""
    detail = any_pb2.Any()
    detail.Pack(api_pb2.Error(code=error.code, message=error.message))
    code = GRPC_STATUS.get(error.code, grpc.StatusCode.INTERNAL)
    return rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=error.message, details=[detail])
    )


class _UnknownMethods(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Answers a method no service has with grpc-go's words, which Centrifugo's clients see."""

    def __init__(self, services: frozenset[str]) -> None:
        self._services = services

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        service, _, method = details.method.lstrip("/").rpartition("/")
        text = (
            f"unknown method {method} for service {service}"
            if service in self._services
            else f"unknown service {service}"
        )

        async def refuse(request: bytes, context: aio.ServicerContext[Any, Any]) -> bytes:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, text)
            raise AssertionError("abort returned")  # pragma: no cover

        return grpc.unary_unary_rpc_method_handler(refuse)


def _add_reflection(server: aio.Server, services: set[str]) -> None:
    """Server reflection (as grpcurl uses it) under both of grpc-go's names, listing ``services``."""
    info = grpc.stream_stream_rpc_method_handler(
        ReflectionServicer(services).ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=_serialize,
    )
    for name in REFLECTION_SERVICES:
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": info}),)
        )


def tls_of(settings: GrpcAPIConfig) -> GrpcApiTLS | None:
    """The PEM material of ``grpc_api.tls`` (validation made sure it reads), or None without TLS."""
    tls = settings.tls
    if not tls.enabled:
        return None
    ca = read_pem(tls.client_ca_pem) if tls.client_ca_pem else b""
    return GrpcApiTLS(read_pem(tls.cert_pem), read_pem(tls.key_pem), ca)


async def start_grpc_api(executor: ApiExecutor, config: Config) -> aio.Server:
    """A started GRPC API server on ``grpc_api.address:grpc_api.port``, running its calls on
    ``executor``, the one the HTTP API and the admin API run theirs on.

    Raises RuntimeError when the port cannot be bound (grpc's own answer)."""
    settings = config.grpc_api
    size = settings.max_receive_message_size
    server = aio.server(options=[("grpc.max_receive_message_length", size)] if size > 0 else [])
    api = GrpcApi(executor, settings)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, api.handlers()),)
    )
    services = {SERVICE.full_name}
    if settings.reflection:
        services.update(REFLECTION_SERVICES)
        _add_reflection(server, services)
    server.add_generic_rpc_handlers((_UnknownMethods(frozenset(services)),))
    target = f"{settings.address or '0.0.0.0'}:{settings.port}"
    tls = tls_of(settings)
    if tls is None:
        server.add_insecure_port(target)
    else:
        root = tls.client_ca_pem or None
        credentials = grpc.ssl_server_credentials(
            [(tls.key_pem, tls.cert_pem)], root_certificates=root, require_client_auth=root is not None
        )
        server.add_secure_port(target, credentials)
    await server.start()
    log.info("serving GRPC API service on %s", target)
    return server
