from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Command(_message.Message):
    __slots__ = ("from_node", "node_info", "disconnect", "unsubscribe", "subscribe", "refresh", "survey_request", "survey_reply", "emulation")
    FROM_NODE_FIELD_NUMBER: _ClassVar[int]
    NODE_INFO_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    SURVEY_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SURVEY_REPLY_FIELD_NUMBER: _ClassVar[int]
    EMULATION_FIELD_NUMBER: _ClassVar[int]
    from_node: str
    node_info: NodeInfo
    disconnect: DisconnectUser
    unsubscribe: UnsubscribeUser
    subscribe: SubscribeUser
    refresh: RefreshUser
    survey_request: SurveyRequest
    survey_reply: SurveyReply
    emulation: Emulation
    def __init__(self, from_node: _Optional[str] = ..., node_info: _Optional[_Union[NodeInfo, _Mapping]] = ..., disconnect: _Optional[_Union[DisconnectUser, _Mapping]] = ..., unsubscribe: _Optional[_Union[UnsubscribeUser, _Mapping]] = ..., subscribe: _Optional[_Union[SubscribeUser, _Mapping]] = ..., refresh: _Optional[_Union[RefreshUser, _Mapping]] = ..., survey_request: _Optional[_Union[SurveyRequest, _Mapping]] = ..., survey_reply: _Optional[_Union[SurveyReply, _Mapping]] = ..., emulation: _Optional[_Union[Emulation, _Mapping]] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("uid", "name", "version", "num_clients", "num_users", "num_channels", "uptime", "num_subs")
    UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NUM_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    NUM_USERS_FIELD_NUMBER: _ClassVar[int]
    NUM_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    NUM_SUBS_FIELD_NUMBER: _ClassVar[int]
    uid: str
    name: str
    version: str
    num_clients: int
    num_users: int
    num_channels: int
    uptime: int
    num_subs: int
    def __init__(self, uid: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., num_clients: _Optional[int] = ..., num_users: _Optional[int] = ..., num_channels: _Optional[int] = ..., uptime: _Optional[int] = ..., num_subs: _Optional[int] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("user", "client", "session")
    USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    user: str
    client: str
    session: str
    def __init__(self, user: _Optional[str] = ..., client: _Optional[str] = ..., session: _Optional[str] = ...) -> None: ...

class DisconnectUser(_message.Message):
    __slots__ = ("target", "code", "reason", "whitelist")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WHITELIST_FIELD_NUMBER: _ClassVar[int]
    target: Target
    code: int
    reason: str
    whitelist: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., code: _Optional[int] = ..., reason: _Optional[str] = ..., whitelist: _Optional[_Iterable[str]] = ...) -> None: ...

class UnsubscribeUser(_message.Message):
    __slots__ = ("target", "channel")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    target: Target
    channel: str
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., channel: _Optional[str] = ...) -> None: ...

class StreamPosition(_message.Message):
    __slots__ = ("offset", "epoch")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    offset: int
    epoch: str
    def __init__(self, offset: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class SubscribeOptions(_message.Message):
    __slots__ = ("chan_info", "data", "expire_at", "emit_presence", "emit_join_leave", "push_join_leave", "recoverable", "positioned", "cache_recovery", "delta", "history_meta_ttl", "recover_since", "auto_cache_recover")
    CHAN_INFO_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    EMIT_PRESENCE_FIELD_NUMBER: _ClassVar[int]
    EMIT_JOIN_LEAVE_FIELD_NUMBER: _ClassVar[int]
    PUSH_JOIN_LEAVE_FIELD_NUMBER: _ClassVar[int]
    RECOVERABLE_FIELD_NUMBER: _ClassVar[int]
    POSITIONED_FIELD_NUMBER: _ClassVar[int]
    CACHE_RECOVERY_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    HISTORY_META_TTL_FIELD_NUMBER: _ClassVar[int]
    RECOVER_SINCE_FIELD_NUMBER: _ClassVar[int]
    AUTO_CACHE_RECOVER_FIELD_NUMBER: _ClassVar[int]
    chan_info: bytes
    data: bytes
    expire_at: int
    emit_presence: bool
    emit_join_leave: bool
    push_join_leave: bool
    recoverable: bool
    positioned: bool
    cache_recovery: bool
    delta: str
    history_meta_ttl: float
    recover_since: StreamPosition
    auto_cache_recover: bool
    def __init__(self, chan_info: _Optional[bytes] = ..., data: _Optional[bytes] = ..., expire_at: _Optional[int] = ..., emit_presence: _Optional[bool] = ..., emit_join_leave: _Optional[bool] = ..., push_join_leave: _Optional[bool] = ..., recoverable: _Optional[bool] = ..., positioned: _Optional[bool] = ..., cache_recovery: _Optional[bool] = ..., delta: _Optional[str] = ..., history_meta_ttl: _Optional[float] = ..., recover_since: _Optional[_Union[StreamPosition, _Mapping]] = ..., auto_cache_recover: _Optional[bool] = ...) -> None: ...

class SubscribeUser(_message.Message):
    __slots__ = ("target", "channel", "options")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    target: Target
    channel: str
    options: SubscribeOptions
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., channel: _Optional[str] = ..., options: _Optional[_Union[SubscribeOptions, _Mapping]] = ...) -> None: ...

class RefreshUser(_message.Message):
    __slots__ = ("target", "expired", "expire_at", "conn_info", "has_conn_info")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    CONN_INFO_FIELD_NUMBER: _ClassVar[int]
    HAS_CONN_INFO_FIELD_NUMBER: _ClassVar[int]
    target: Target
    expired: bool
    expire_at: int
    conn_info: bytes
    has_conn_info: bool
    def __init__(self, target: _Optional[_Union[Target, _Mapping]] = ..., expired: _Optional[bool] = ..., expire_at: _Optional[int] = ..., conn_info: _Optional[bytes] = ..., has_conn_info: _Optional[bool] = ...) -> None: ...

class SurveyRequest(_message.Message):
    __slots__ = ("id", "op", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: int
    op: str
    data: bytes
    def __init__(self, id: _Optional[int] = ..., op: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class SurveyReply(_message.Message):
    __slots__ = ("id", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: int
    data: bytes
    def __init__(self, id: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Emulation(_message.Message):
    __slots__ = ("session", "data")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    session: str
    data: bytes
    def __init__(self, session: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...
