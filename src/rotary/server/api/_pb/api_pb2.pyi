from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class StreamPosition(_message.Message):
    __slots__ = ("offset", "epoch")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    offset: int
    epoch: str
    def __init__(self, offset: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class BoolValue(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: bool
    def __init__(self, value: _Optional[bool] = ...) -> None: ...

class Int32Value(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class ClientInfo(_message.Message):
    __slots__ = ("user", "client", "conn_info", "chan_info")
    USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    CONN_INFO_FIELD_NUMBER: _ClassVar[int]
    CHAN_INFO_FIELD_NUMBER: _ClassVar[int]
    user: str
    client: str
    conn_info: bytes
    chan_info: bytes
    def __init__(self, user: _Optional[str] = ..., client: _Optional[str] = ..., conn_info: _Optional[bytes] = ..., chan_info: _Optional[bytes] = ...) -> None: ...

class FilterNode(_message.Message):
    __slots__ = ("op", "key", "cmp", "val", "vals", "nodes")
    OP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CMP_FIELD_NUMBER: _ClassVar[int]
    VAL_FIELD_NUMBER: _ClassVar[int]
    VALS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    op: str
    key: str
    cmp: str
    val: str
    vals: _containers.RepeatedScalarFieldContainer[str]
    nodes: _containers.RepeatedCompositeFieldContainer[FilterNode]
    def __init__(self, op: _Optional[str] = ..., key: _Optional[str] = ..., cmp: _Optional[str] = ..., val: _Optional[str] = ..., vals: _Optional[_Iterable[str]] = ..., nodes: _Optional[_Iterable[_Union[FilterNode, _Mapping]]] = ...) -> None: ...

class BatchRequest(_message.Message):
    __slots__ = ("commands", "parallel")
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedCompositeFieldContainer[Command]
    parallel: bool
    def __init__(self, commands: _Optional[_Iterable[_Union[Command, _Mapping]]] = ..., parallel: _Optional[bool] = ...) -> None: ...

class BatchResponse(_message.Message):
    __slots__ = ("replies",)
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[Reply]
    def __init__(self, replies: _Optional[_Iterable[_Union[Reply, _Mapping]]] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("publish", "broadcast", "subscribe", "unsubscribe", "disconnect", "presence", "presence_stats", "history", "history_remove", "info", "rpc", "refresh", "channels", "connections", "update_user_status", "get_user_status", "delete_user_status", "block_user", "unblock_user", "revoke_token", "invalidate_user_tokens", "device_register", "device_update", "device_remove", "device_list", "device_topic_list", "device_topic_update", "user_topic_list", "user_topic_update", "send_push_notification", "update_push_status", "cancel_push", "map_publish", "map_remove", "map_read_state", "map_read_stream", "map_stats", "map_clear", "shared_poll_publish")
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_STATS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    HISTORY_REMOVE_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_USER_STATUS_FIELD_NUMBER: _ClassVar[int]
    GET_USER_STATUS_FIELD_NUMBER: _ClassVar[int]
    DELETE_USER_STATUS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_USER_FIELD_NUMBER: _ClassVar[int]
    UNBLOCK_USER_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INVALIDATE_USER_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_REGISTER_FIELD_NUMBER: _ClassVar[int]
    DEVICE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_REMOVE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_LIST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TOPIC_LIST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TOPIC_UPDATE_FIELD_NUMBER: _ClassVar[int]
    USER_TOPIC_LIST_FIELD_NUMBER: _ClassVar[int]
    USER_TOPIC_UPDATE_FIELD_NUMBER: _ClassVar[int]
    SEND_PUSH_NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_PUSH_STATUS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_PUSH_FIELD_NUMBER: _ClassVar[int]
    MAP_PUBLISH_FIELD_NUMBER: _ClassVar[int]
    MAP_REMOVE_FIELD_NUMBER: _ClassVar[int]
    MAP_READ_STATE_FIELD_NUMBER: _ClassVar[int]
    MAP_READ_STREAM_FIELD_NUMBER: _ClassVar[int]
    MAP_STATS_FIELD_NUMBER: _ClassVar[int]
    MAP_CLEAR_FIELD_NUMBER: _ClassVar[int]
    SHARED_POLL_PUBLISH_FIELD_NUMBER: _ClassVar[int]
    publish: PublishRequest
    broadcast: BroadcastRequest
    subscribe: SubscribeRequest
    unsubscribe: UnsubscribeRequest
    disconnect: DisconnectRequest
    presence: PresenceRequest
    presence_stats: PresenceStatsRequest
    history: HistoryRequest
    history_remove: HistoryRemoveRequest
    info: InfoRequest
    rpc: RPCRequest
    refresh: RefreshRequest
    channels: ChannelsRequest
    connections: ConnectionsRequest
    update_user_status: UpdateUserStatusRequest
    get_user_status: GetUserStatusRequest
    delete_user_status: DeleteUserStatusRequest
    block_user: BlockUserRequest
    unblock_user: UnblockUserRequest
    revoke_token: RevokeTokenRequest
    invalidate_user_tokens: InvalidateUserTokensRequest
    device_register: DeviceRegisterRequest
    device_update: DeviceUpdateRequest
    device_remove: DeviceRemoveRequest
    device_list: DeviceListRequest
    device_topic_list: DeviceTopicListRequest
    device_topic_update: DeviceTopicUpdateRequest
    user_topic_list: UserTopicListRequest
    user_topic_update: UserTopicUpdateRequest
    send_push_notification: SendPushNotificationRequest
    update_push_status: UpdatePushStatusRequest
    cancel_push: CancelPushRequest
    map_publish: MapPublishRequest
    map_remove: MapRemoveRequest
    map_read_state: MapReadStateRequest
    map_read_stream: MapReadStreamRequest
    map_stats: MapStatsRequest
    map_clear: MapClearRequest
    shared_poll_publish: SharedPollPublishRequest
    def __init__(self, publish: _Optional[_Union[PublishRequest, _Mapping]] = ..., broadcast: _Optional[_Union[BroadcastRequest, _Mapping]] = ..., subscribe: _Optional[_Union[SubscribeRequest, _Mapping]] = ..., unsubscribe: _Optional[_Union[UnsubscribeRequest, _Mapping]] = ..., disconnect: _Optional[_Union[DisconnectRequest, _Mapping]] = ..., presence: _Optional[_Union[PresenceRequest, _Mapping]] = ..., presence_stats: _Optional[_Union[PresenceStatsRequest, _Mapping]] = ..., history: _Optional[_Union[HistoryRequest, _Mapping]] = ..., history_remove: _Optional[_Union[HistoryRemoveRequest, _Mapping]] = ..., info: _Optional[_Union[InfoRequest, _Mapping]] = ..., rpc: _Optional[_Union[RPCRequest, _Mapping]] = ..., refresh: _Optional[_Union[RefreshRequest, _Mapping]] = ..., channels: _Optional[_Union[ChannelsRequest, _Mapping]] = ..., connections: _Optional[_Union[ConnectionsRequest, _Mapping]] = ..., update_user_status: _Optional[_Union[UpdateUserStatusRequest, _Mapping]] = ..., get_user_status: _Optional[_Union[GetUserStatusRequest, _Mapping]] = ..., delete_user_status: _Optional[_Union[DeleteUserStatusRequest, _Mapping]] = ..., block_user: _Optional[_Union[BlockUserRequest, _Mapping]] = ..., unblock_user: _Optional[_Union[UnblockUserRequest, _Mapping]] = ..., revoke_token: _Optional[_Union[RevokeTokenRequest, _Mapping]] = ..., invalidate_user_tokens: _Optional[_Union[InvalidateUserTokensRequest, _Mapping]] = ..., device_register: _Optional[_Union[DeviceRegisterRequest, _Mapping]] = ..., device_update: _Optional[_Union[DeviceUpdateRequest, _Mapping]] = ..., device_remove: _Optional[_Union[DeviceRemoveRequest, _Mapping]] = ..., device_list: _Optional[_Union[DeviceListRequest, _Mapping]] = ..., device_topic_list: _Optional[_Union[DeviceTopicListRequest, _Mapping]] = ..., device_topic_update: _Optional[_Union[DeviceTopicUpdateRequest, _Mapping]] = ..., user_topic_list: _Optional[_Union[UserTopicListRequest, _Mapping]] = ..., user_topic_update: _Optional[_Union[UserTopicUpdateRequest, _Mapping]] = ..., send_push_notification: _Optional[_Union[SendPushNotificationRequest, _Mapping]] = ..., update_push_status: _Optional[_Union[UpdatePushStatusRequest, _Mapping]] = ..., cancel_push: _Optional[_Union[CancelPushRequest, _Mapping]] = ..., map_publish: _Optional[_Union[MapPublishRequest, _Mapping]] = ..., map_remove: _Optional[_Union[MapRemoveRequest, _Mapping]] = ..., map_read_state: _Optional[_Union[MapReadStateRequest, _Mapping]] = ..., map_read_stream: _Optional[_Union[MapReadStreamRequest, _Mapping]] = ..., map_stats: _Optional[_Union[MapStatsRequest, _Mapping]] = ..., map_clear: _Optional[_Union[MapClearRequest, _Mapping]] = ..., shared_poll_publish: _Optional[_Union[SharedPollPublishRequest, _Mapping]] = ...) -> None: ...

class Reply(_message.Message):
    __slots__ = ("error", "publish", "broadcast", "subscribe", "unsubscribe", "disconnect", "presence", "presence_stats", "history", "history_remove", "info", "rpc", "refresh", "channels", "connections", "update_user_status", "get_user_status", "delete_user_status", "block_user", "unblock_user", "revoke_token", "invalidate_user_tokens", "device_register", "device_update", "device_remove", "device_list", "device_topic_list", "device_topic_update", "user_topic_list", "user_topic_update", "send_push_notification", "update_push_status", "cancel_push", "map_publish", "map_remove", "map_read_state", "map_read_stream", "map_stats", "map_clear", "shared_poll_publish")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_STATS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    HISTORY_REMOVE_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_USER_STATUS_FIELD_NUMBER: _ClassVar[int]
    GET_USER_STATUS_FIELD_NUMBER: _ClassVar[int]
    DELETE_USER_STATUS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_USER_FIELD_NUMBER: _ClassVar[int]
    UNBLOCK_USER_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INVALIDATE_USER_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_REGISTER_FIELD_NUMBER: _ClassVar[int]
    DEVICE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_REMOVE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_LIST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TOPIC_LIST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TOPIC_UPDATE_FIELD_NUMBER: _ClassVar[int]
    USER_TOPIC_LIST_FIELD_NUMBER: _ClassVar[int]
    USER_TOPIC_UPDATE_FIELD_NUMBER: _ClassVar[int]
    SEND_PUSH_NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_PUSH_STATUS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_PUSH_FIELD_NUMBER: _ClassVar[int]
    MAP_PUBLISH_FIELD_NUMBER: _ClassVar[int]
    MAP_REMOVE_FIELD_NUMBER: _ClassVar[int]
    MAP_READ_STATE_FIELD_NUMBER: _ClassVar[int]
    MAP_READ_STREAM_FIELD_NUMBER: _ClassVar[int]
    MAP_STATS_FIELD_NUMBER: _ClassVar[int]
    MAP_CLEAR_FIELD_NUMBER: _ClassVar[int]
    SHARED_POLL_PUBLISH_FIELD_NUMBER: _ClassVar[int]
    error: Error
    publish: PublishResult
    broadcast: BroadcastResult
    subscribe: SubscribeResult
    unsubscribe: UnsubscribeResult
    disconnect: DisconnectResult
    presence: PresenceResult
    presence_stats: PresenceStatsResult
    history: HistoryResult
    history_remove: HistoryRemoveResult
    info: InfoResult
    rpc: RPCResult
    refresh: RefreshResult
    channels: ChannelsResult
    connections: ConnectionsResult
    update_user_status: UpdateUserStatusResult
    get_user_status: GetUserStatusResult
    delete_user_status: DeleteUserStatusResult
    block_user: BlockUserResult
    unblock_user: UnblockUserResult
    revoke_token: RevokeTokenResult
    invalidate_user_tokens: InvalidateUserTokensResult
    device_register: DeviceRegisterResult
    device_update: DeviceUpdateResult
    device_remove: DeviceRemoveResult
    device_list: DeviceListResult
    device_topic_list: DeviceTopicListResult
    device_topic_update: DeviceTopicUpdateResult
    user_topic_list: UserTopicListResult
    user_topic_update: UserTopicUpdateResult
    send_push_notification: SendPushNotificationResult
    update_push_status: UpdatePushStatusResult
    cancel_push: CancelPushResult
    map_publish: MapPublishResult
    map_remove: MapRemoveResult
    map_read_state: MapReadStateResult
    map_read_stream: MapReadStreamResult
    map_stats: MapStatsResult
    map_clear: MapClearResult
    shared_poll_publish: SharedPollPublishResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., publish: _Optional[_Union[PublishResult, _Mapping]] = ..., broadcast: _Optional[_Union[BroadcastResult, _Mapping]] = ..., subscribe: _Optional[_Union[SubscribeResult, _Mapping]] = ..., unsubscribe: _Optional[_Union[UnsubscribeResult, _Mapping]] = ..., disconnect: _Optional[_Union[DisconnectResult, _Mapping]] = ..., presence: _Optional[_Union[PresenceResult, _Mapping]] = ..., presence_stats: _Optional[_Union[PresenceStatsResult, _Mapping]] = ..., history: _Optional[_Union[HistoryResult, _Mapping]] = ..., history_remove: _Optional[_Union[HistoryRemoveResult, _Mapping]] = ..., info: _Optional[_Union[InfoResult, _Mapping]] = ..., rpc: _Optional[_Union[RPCResult, _Mapping]] = ..., refresh: _Optional[_Union[RefreshResult, _Mapping]] = ..., channels: _Optional[_Union[ChannelsResult, _Mapping]] = ..., connections: _Optional[_Union[ConnectionsResult, _Mapping]] = ..., update_user_status: _Optional[_Union[UpdateUserStatusResult, _Mapping]] = ..., get_user_status: _Optional[_Union[GetUserStatusResult, _Mapping]] = ..., delete_user_status: _Optional[_Union[DeleteUserStatusResult, _Mapping]] = ..., block_user: _Optional[_Union[BlockUserResult, _Mapping]] = ..., unblock_user: _Optional[_Union[UnblockUserResult, _Mapping]] = ..., revoke_token: _Optional[_Union[RevokeTokenResult, _Mapping]] = ..., invalidate_user_tokens: _Optional[_Union[InvalidateUserTokensResult, _Mapping]] = ..., device_register: _Optional[_Union[DeviceRegisterResult, _Mapping]] = ..., device_update: _Optional[_Union[DeviceUpdateResult, _Mapping]] = ..., device_remove: _Optional[_Union[DeviceRemoveResult, _Mapping]] = ..., device_list: _Optional[_Union[DeviceListResult, _Mapping]] = ..., device_topic_list: _Optional[_Union[DeviceTopicListResult, _Mapping]] = ..., device_topic_update: _Optional[_Union[DeviceTopicUpdateResult, _Mapping]] = ..., user_topic_list: _Optional[_Union[UserTopicListResult, _Mapping]] = ..., user_topic_update: _Optional[_Union[UserTopicUpdateResult, _Mapping]] = ..., send_push_notification: _Optional[_Union[SendPushNotificationResult, _Mapping]] = ..., update_push_status: _Optional[_Union[UpdatePushStatusResult, _Mapping]] = ..., cancel_push: _Optional[_Union[CancelPushResult, _Mapping]] = ..., map_publish: _Optional[_Union[MapPublishResult, _Mapping]] = ..., map_remove: _Optional[_Union[MapRemoveResult, _Mapping]] = ..., map_read_state: _Optional[_Union[MapReadStateResult, _Mapping]] = ..., map_read_stream: _Optional[_Union[MapReadStreamResult, _Mapping]] = ..., map_stats: _Optional[_Union[MapStatsResult, _Mapping]] = ..., map_clear: _Optional[_Union[MapClearResult, _Mapping]] = ..., shared_poll_publish: _Optional[_Union[SharedPollPublishResult, _Mapping]] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("channel", "data", "b64data", "skip_history", "tags", "idempotency_key", "delta", "version", "version_epoch")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    B64DATA_FIELD_NUMBER: _ClassVar[int]
    SKIP_HISTORY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_EPOCH_FIELD_NUMBER: _ClassVar[int]
    channel: str
    data: bytes
    b64data: str
    skip_history: bool
    tags: _containers.ScalarMap[str, str]
    idempotency_key: str
    delta: bool
    version: int
    version_epoch: str
    def __init__(self, channel: _Optional[str] = ..., data: _Optional[bytes] = ..., b64data: _Optional[str] = ..., skip_history: _Optional[bool] = ..., tags: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ..., delta: _Optional[bool] = ..., version: _Optional[int] = ..., version_epoch: _Optional[str] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: PublishResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[PublishResult, _Mapping]] = ...) -> None: ...

class PublishResult(_message.Message):
    __slots__ = ("offset", "epoch")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    offset: int
    epoch: str
    def __init__(self, offset: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class BroadcastRequest(_message.Message):
    __slots__ = ("channels", "data", "b64data", "skip_history", "tags", "idempotency_key", "delta", "version", "version_epoch")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    B64DATA_FIELD_NUMBER: _ClassVar[int]
    SKIP_HISTORY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_EPOCH_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedScalarFieldContainer[str]
    data: bytes
    b64data: str
    skip_history: bool
    tags: _containers.ScalarMap[str, str]
    idempotency_key: str
    delta: bool
    version: int
    version_epoch: str
    def __init__(self, channels: _Optional[_Iterable[str]] = ..., data: _Optional[bytes] = ..., b64data: _Optional[str] = ..., skip_history: _Optional[bool] = ..., tags: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ..., delta: _Optional[bool] = ..., version: _Optional[int] = ..., version_epoch: _Optional[str] = ...) -> None: ...

class BroadcastResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: BroadcastResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[BroadcastResult, _Mapping]] = ...) -> None: ...

class BroadcastResult(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[PublishResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[PublishResponse, _Mapping]]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("channel", "user", "expire_at", "info", "b64info", "client", "data", "b64data", "recover_since", "override", "session", "label_filter", "all_users")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    B64INFO_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    B64DATA_FIELD_NUMBER: _ClassVar[int]
    RECOVER_SINCE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FILTER_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    user: str
    expire_at: int
    info: bytes
    b64info: str
    client: str
    data: bytes
    b64data: str
    recover_since: StreamPosition
    override: SubscribeOptionOverride
    session: str
    label_filter: FilterNode
    all_users: bool
    def __init__(self, channel: _Optional[str] = ..., user: _Optional[str] = ..., expire_at: _Optional[int] = ..., info: _Optional[bytes] = ..., b64info: _Optional[str] = ..., client: _Optional[str] = ..., data: _Optional[bytes] = ..., b64data: _Optional[str] = ..., recover_since: _Optional[_Union[StreamPosition, _Mapping]] = ..., override: _Optional[_Union[SubscribeOptionOverride, _Mapping]] = ..., session: _Optional[str] = ..., label_filter: _Optional[_Union[FilterNode, _Mapping]] = ..., all_users: _Optional[bool] = ...) -> None: ...

class SubscribeOptionOverride(_message.Message):
    __slots__ = ("presence", "join_leave", "force_recovery", "force_positioning", "force_push_join_leave")
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    JOIN_LEAVE_FIELD_NUMBER: _ClassVar[int]
    FORCE_RECOVERY_FIELD_NUMBER: _ClassVar[int]
    FORCE_POSITIONING_FIELD_NUMBER: _ClassVar[int]
    FORCE_PUSH_JOIN_LEAVE_FIELD_NUMBER: _ClassVar[int]
    presence: BoolValue
    join_leave: BoolValue
    force_recovery: BoolValue
    force_positioning: BoolValue
    force_push_join_leave: BoolValue
    def __init__(self, presence: _Optional[_Union[BoolValue, _Mapping]] = ..., join_leave: _Optional[_Union[BoolValue, _Mapping]] = ..., force_recovery: _Optional[_Union[BoolValue, _Mapping]] = ..., force_positioning: _Optional[_Union[BoolValue, _Mapping]] = ..., force_push_join_leave: _Optional[_Union[BoolValue, _Mapping]] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: SubscribeResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[SubscribeResult, _Mapping]] = ...) -> None: ...

class SubscribeResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UnsubscribeRequest(_message.Message):
    __slots__ = ("channel", "user", "client", "session", "label_filter", "all_users")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FILTER_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    user: str
    client: str
    session: str
    label_filter: FilterNode
    all_users: bool
    def __init__(self, channel: _Optional[str] = ..., user: _Optional[str] = ..., client: _Optional[str] = ..., session: _Optional[str] = ..., label_filter: _Optional[_Union[FilterNode, _Mapping]] = ..., all_users: _Optional[bool] = ...) -> None: ...

class UnsubscribeResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: UnsubscribeResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[UnsubscribeResult, _Mapping]] = ...) -> None: ...

class UnsubscribeResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DisconnectRequest(_message.Message):
    __slots__ = ("user", "disconnect", "client", "whitelist", "session", "label_filter", "all_users")
    USER_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    WHITELIST_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FILTER_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    user: str
    disconnect: Disconnect
    client: str
    whitelist: _containers.RepeatedScalarFieldContainer[str]
    session: str
    label_filter: FilterNode
    all_users: bool
    def __init__(self, user: _Optional[str] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ..., client: _Optional[str] = ..., whitelist: _Optional[_Iterable[str]] = ..., session: _Optional[str] = ..., label_filter: _Optional[_Union[FilterNode, _Mapping]] = ..., all_users: _Optional[bool] = ...) -> None: ...

class Disconnect(_message.Message):
    __slots__ = ("code", "reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: int
    reason: str
    def __init__(self, code: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DisconnectResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: DisconnectResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[DisconnectResult, _Mapping]] = ...) -> None: ...

class DisconnectResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RefreshRequest(_message.Message):
    __slots__ = ("user", "client", "expired", "expire_at", "info", "session", "label_filter", "all_users")
    USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FILTER_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    user: str
    client: str
    expired: bool
    expire_at: int
    info: bytes
    session: str
    label_filter: FilterNode
    all_users: bool
    def __init__(self, user: _Optional[str] = ..., client: _Optional[str] = ..., expired: _Optional[bool] = ..., expire_at: _Optional[int] = ..., info: _Optional[bytes] = ..., session: _Optional[str] = ..., label_filter: _Optional[_Union[FilterNode, _Mapping]] = ..., all_users: _Optional[bool] = ...) -> None: ...

class RefreshResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: RefreshResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[RefreshResult, _Mapping]] = ...) -> None: ...

class RefreshResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PresenceRequest(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: str
    def __init__(self, channel: _Optional[str] = ...) -> None: ...

class PresenceResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: PresenceResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[PresenceResult, _Mapping]] = ...) -> None: ...

class PresenceResult(_message.Message):
    __slots__ = ("presence",)
    class PresenceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ClientInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ClientInfo, _Mapping]] = ...) -> None: ...
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    presence: _containers.MessageMap[str, ClientInfo]
    def __init__(self, presence: _Optional[_Mapping[str, ClientInfo]] = ...) -> None: ...

class PresenceStatsRequest(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: str
    def __init__(self, channel: _Optional[str] = ...) -> None: ...

class PresenceStatsResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: PresenceStatsResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[PresenceStatsResult, _Mapping]] = ...) -> None: ...

class PresenceStatsResult(_message.Message):
    __slots__ = ("num_clients", "num_users")
    NUM_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    NUM_USERS_FIELD_NUMBER: _ClassVar[int]
    num_clients: int
    num_users: int
    def __init__(self, num_clients: _Optional[int] = ..., num_users: _Optional[int] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("channel", "limit", "since", "reverse")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    limit: int
    since: StreamPosition
    reverse: bool
    def __init__(self, channel: _Optional[str] = ..., limit: _Optional[int] = ..., since: _Optional[_Union[StreamPosition, _Mapping]] = ..., reverse: _Optional[bool] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: HistoryResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[HistoryResult, _Mapping]] = ...) -> None: ...

class HistoryResult(_message.Message):
    __slots__ = ("publications", "epoch", "offset")
    PUBLICATIONS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    publications: _containers.RepeatedCompositeFieldContainer[Publication]
    epoch: str
    offset: int
    def __init__(self, publications: _Optional[_Iterable[_Union[Publication, _Mapping]]] = ..., epoch: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class Publication(_message.Message):
    __slots__ = ("data", "info", "offset", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATA_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    info: ClientInfo
    offset: int
    tags: _containers.ScalarMap[str, str]
    def __init__(self, data: _Optional[bytes] = ..., info: _Optional[_Union[ClientInfo, _Mapping]] = ..., offset: _Optional[int] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HistoryRemoveRequest(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: str
    def __init__(self, channel: _Optional[str] = ...) -> None: ...

class HistoryRemoveResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: HistoryRemoveResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[HistoryRemoveResult, _Mapping]] = ...) -> None: ...

class HistoryRemoveResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChannelsRequest(_message.Message):
    __slots__ = ("pattern",)
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    def __init__(self, pattern: _Optional[str] = ...) -> None: ...

class ChannelsResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: ChannelsResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[ChannelsResult, _Mapping]] = ...) -> None: ...

class ChannelsResult(_message.Message):
    __slots__ = ("channels",)
    class ChannelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ChannelInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ChannelInfo, _Mapping]] = ...) -> None: ...
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.MessageMap[str, ChannelInfo]
    def __init__(self, channels: _Optional[_Mapping[str, ChannelInfo]] = ...) -> None: ...

class ChannelInfo(_message.Message):
    __slots__ = ("num_clients",)
    NUM_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    num_clients: int
    def __init__(self, num_clients: _Optional[int] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: InfoResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[InfoResult, _Mapping]] = ...) -> None: ...

class InfoResult(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeResult]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeResult, _Mapping]]] = ...) -> None: ...

class NodeResult(_message.Message):
    __slots__ = ("uid", "name", "version", "num_clients", "num_users", "num_channels", "uptime", "metrics", "process", "num_subs")
    UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NUM_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    NUM_USERS_FIELD_NUMBER: _ClassVar[int]
    NUM_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    NUM_SUBS_FIELD_NUMBER: _ClassVar[int]
    uid: str
    name: str
    version: str
    num_clients: int
    num_users: int
    num_channels: int
    uptime: int
    metrics: Metrics
    process: Process
    num_subs: int
    def __init__(self, uid: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., num_clients: _Optional[int] = ..., num_users: _Optional[int] = ..., num_channels: _Optional[int] = ..., uptime: _Optional[int] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., process: _Optional[_Union[Process, _Mapping]] = ..., num_subs: _Optional[int] = ...) -> None: ...

class Metrics(_message.Message):
    __slots__ = ("interval", "items")
    class ItemsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    interval: float
    items: _containers.ScalarMap[str, float]
    def __init__(self, interval: _Optional[float] = ..., items: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Process(_message.Message):
    __slots__ = ("cpu", "rss")
    CPU_FIELD_NUMBER: _ClassVar[int]
    RSS_FIELD_NUMBER: _ClassVar[int]
    cpu: float
    rss: int
    def __init__(self, cpu: _Optional[float] = ..., rss: _Optional[int] = ...) -> None: ...

class RPCRequest(_message.Message):
    __slots__ = ("method", "params")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    method: str
    params: bytes
    def __init__(self, method: _Optional[str] = ..., params: _Optional[bytes] = ...) -> None: ...

class RPCResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: RPCResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[RPCResult, _Mapping]] = ...) -> None: ...

class RPCResult(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ConnectionsRequest(_message.Message):
    __slots__ = ("user", "expression", "label_filter")
    USER_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FILTER_FIELD_NUMBER: _ClassVar[int]
    user: str
    expression: str
    label_filter: FilterNode
    def __init__(self, user: _Optional[str] = ..., expression: _Optional[str] = ..., label_filter: _Optional[_Union[FilterNode, _Mapping]] = ...) -> None: ...

class ConnectionsResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: ConnectionsResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[ConnectionsResult, _Mapping]] = ...) -> None: ...

class ConnectionsResult(_message.Message):
    __slots__ = ("connections",)
    class ConnectionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ConnectionInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ConnectionInfo, _Mapping]] = ...) -> None: ...
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    connections: _containers.MessageMap[str, ConnectionInfo]
    def __init__(self, connections: _Optional[_Mapping[str, ConnectionInfo]] = ...) -> None: ...

class ConnectionInfo(_message.Message):
    __slots__ = ("app_name", "app_version", "transport", "protocol", "user", "state", "connected_at_ms", "ping_pong_latency_ms", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PING_PONG_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    app_name: str
    app_version: str
    transport: str
    protocol: str
    user: str
    state: ConnectionState
    connected_at_ms: int
    ping_pong_latency_ms: int
    labels: _containers.ScalarMap[str, str]
    def __init__(self, app_name: _Optional[str] = ..., app_version: _Optional[str] = ..., transport: _Optional[str] = ..., protocol: _Optional[str] = ..., user: _Optional[str] = ..., state: _Optional[_Union[ConnectionState, _Mapping]] = ..., connected_at_ms: _Optional[int] = ..., ping_pong_latency_ms: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ConnectionState(_message.Message):
    __slots__ = ("channels", "connection_token", "subscription_tokens", "meta")
    class ChannelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ChannelContext
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ChannelContext, _Mapping]] = ...) -> None: ...
    class SubscriptionTokensEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: SubscriptionTokenInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[SubscriptionTokenInfo, _Mapping]] = ...) -> None: ...
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.MessageMap[str, ChannelContext]
    connection_token: ConnectionTokenInfo
    subscription_tokens: _containers.MessageMap[str, SubscriptionTokenInfo]
    meta: bytes
    def __init__(self, channels: _Optional[_Mapping[str, ChannelContext]] = ..., connection_token: _Optional[_Union[ConnectionTokenInfo, _Mapping]] = ..., subscription_tokens: _Optional[_Mapping[str, SubscriptionTokenInfo]] = ..., meta: _Optional[bytes] = ...) -> None: ...

class ChannelContext(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: int
    def __init__(self, source: _Optional[int] = ...) -> None: ...

class ConnectionTokenInfo(_message.Message):
    __slots__ = ("uid", "issued_at")
    UID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    uid: str
    issued_at: int
    def __init__(self, uid: _Optional[str] = ..., issued_at: _Optional[int] = ...) -> None: ...

class SubscriptionTokenInfo(_message.Message):
    __slots__ = ("uid", "issued_at")
    UID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    uid: str
    issued_at: int
    def __init__(self, uid: _Optional[str] = ..., issued_at: _Optional[int] = ...) -> None: ...

class UpdateUserStatusRequest(_message.Message):
    __slots__ = ("users", "state")
    USERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    state: str
    def __init__(self, users: _Optional[_Iterable[str]] = ..., state: _Optional[str] = ...) -> None: ...

class UpdateUserStatusResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: UpdateUserStatusResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[UpdateUserStatusResult, _Mapping]] = ...) -> None: ...

class UpdateUserStatusResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetUserStatusRequest(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, users: _Optional[_Iterable[str]] = ...) -> None: ...

class GetUserStatusResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: GetUserStatusResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[GetUserStatusResult, _Mapping]] = ...) -> None: ...

class GetUserStatusResult(_message.Message):
    __slots__ = ("statuses",)
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedCompositeFieldContainer[UserStatus]
    def __init__(self, statuses: _Optional[_Iterable[_Union[UserStatus, _Mapping]]] = ...) -> None: ...

class UserStatus(_message.Message):
    __slots__ = ("user", "active", "online", "state")
    USER_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    user: str
    active: int
    online: int
    state: str
    def __init__(self, user: _Optional[str] = ..., active: _Optional[int] = ..., online: _Optional[int] = ..., state: _Optional[str] = ...) -> None: ...

class DeleteUserStatusRequest(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, users: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteUserStatusResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: DeleteUserStatusResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[DeleteUserStatusResult, _Mapping]] = ...) -> None: ...

class DeleteUserStatusResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BlockUserRequest(_message.Message):
    __slots__ = ("expire_at", "user")
    EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    expire_at: int
    user: str
    def __init__(self, expire_at: _Optional[int] = ..., user: _Optional[str] = ...) -> None: ...

class BlockUserResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: BlockUserResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[BlockUserResult, _Mapping]] = ...) -> None: ...

class BlockUserResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UnblockUserRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class UnblockUserResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: UnblockUserResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[UnblockUserResult, _Mapping]] = ...) -> None: ...

class UnblockUserResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("expire_at", "uid")
    EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    expire_at: int
    uid: str
    def __init__(self, expire_at: _Optional[int] = ..., uid: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: RevokeTokenResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[RevokeTokenResult, _Mapping]] = ...) -> None: ...

class RevokeTokenResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InvalidateUserTokensRequest(_message.Message):
    __slots__ = ("expire_at", "user", "issued_before", "channel")
    EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    expire_at: int
    user: str
    issued_before: int
    channel: str
    def __init__(self, expire_at: _Optional[int] = ..., user: _Optional[str] = ..., issued_before: _Optional[int] = ..., channel: _Optional[str] = ...) -> None: ...

class InvalidateUserTokensResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: InvalidateUserTokensResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[InvalidateUserTokensResult, _Mapping]] = ...) -> None: ...

class InvalidateUserTokensResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeviceRegisterRequest(_message.Message):
    __slots__ = ("id", "provider", "token", "platform", "user", "meta", "topics", "timezone", "locale")
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    id: str
    provider: str
    token: str
    platform: str
    user: str
    meta: _containers.ScalarMap[str, str]
    topics: _containers.RepeatedScalarFieldContainer[str]
    timezone: str
    locale: str
    def __init__(self, id: _Optional[str] = ..., provider: _Optional[str] = ..., token: _Optional[str] = ..., platform: _Optional[str] = ..., user: _Optional[str] = ..., meta: _Optional[_Mapping[str, str]] = ..., topics: _Optional[_Iterable[str]] = ..., timezone: _Optional[str] = ..., locale: _Optional[str] = ...) -> None: ...

class DeviceRegisterResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: DeviceRegisterResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[DeviceRegisterResult, _Mapping]] = ...) -> None: ...

class DeviceRegisterResult(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeviceUpdateRequest(_message.Message):
    __slots__ = ("ids", "users", "user_update", "meta_update", "topics_update", "timezone_update", "locale_update")
    IDS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    USER_UPDATE_FIELD_NUMBER: _ClassVar[int]
    META_UPDATE_FIELD_NUMBER: _ClassVar[int]
    TOPICS_UPDATE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    users: _containers.RepeatedScalarFieldContainer[str]
    user_update: DeviceUserUpdate
    meta_update: DeviceMetaUpdate
    topics_update: DeviceTopicsUpdate
    timezone_update: DeviceTimezoneUpdate
    locale_update: DeviceLocaleUpdate
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., users: _Optional[_Iterable[str]] = ..., user_update: _Optional[_Union[DeviceUserUpdate, _Mapping]] = ..., meta_update: _Optional[_Union[DeviceMetaUpdate, _Mapping]] = ..., topics_update: _Optional[_Union[DeviceTopicsUpdate, _Mapping]] = ..., timezone_update: _Optional[_Union[DeviceTimezoneUpdate, _Mapping]] = ..., locale_update: _Optional[_Union[DeviceLocaleUpdate, _Mapping]] = ...) -> None: ...

class DeviceUserUpdate(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class DeviceMetaUpdate(_message.Message):
    __slots__ = ("meta",)
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    META_FIELD_NUMBER: _ClassVar[int]
    meta: _containers.ScalarMap[str, str]
    def __init__(self, meta: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DeviceTopicsUpdate(_message.Message):
    __slots__ = ("op", "topics")
    OP_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    op: str
    topics: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, op: _Optional[str] = ..., topics: _Optional[_Iterable[str]] = ...) -> None: ...

class DeviceTimezoneUpdate(_message.Message):
    __slots__ = ("timezone",)
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    timezone: str
    def __init__(self, timezone: _Optional[str] = ...) -> None: ...

class DeviceLocaleUpdate(_message.Message):
    __slots__ = ("locale",)
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    locale: str
    def __init__(self, locale: _Optional[str] = ...) -> None: ...

class DeviceUpdateResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: DeviceUpdateResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[DeviceUpdateResult, _Mapping]] = ...) -> None: ...

class DeviceUpdateResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeviceRemoveRequest(_message.Message):
    __slots__ = ("ids", "users")
    IDS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    users: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., users: _Optional[_Iterable[str]] = ...) -> None: ...

class DeviceRemoveResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: DeviceRemoveResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[DeviceRemoveResult, _Mapping]] = ...) -> None: ...

class DeviceRemoveResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeviceFilter(_message.Message):
    __slots__ = ("ids", "users", "topics", "providers", "platforms")
    IDS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    users: _containers.RepeatedScalarFieldContainer[str]
    topics: _containers.RepeatedScalarFieldContainer[str]
    providers: _containers.RepeatedScalarFieldContainer[str]
    platforms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., users: _Optional[_Iterable[str]] = ..., topics: _Optional[_Iterable[str]] = ..., providers: _Optional[_Iterable[str]] = ..., platforms: _Optional[_Iterable[str]] = ...) -> None: ...

class DeviceListRequest(_message.Message):
    __slots__ = ("filter", "include_total_count", "include_meta", "include_topics", "include_webpush_keys", "cursor", "limit")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_META_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOPICS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_WEBPUSH_KEYS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    filter: DeviceFilter
    include_total_count: bool
    include_meta: bool
    include_topics: bool
    include_webpush_keys: bool
    cursor: str
    limit: int
    def __init__(self, filter: _Optional[_Union[DeviceFilter, _Mapping]] = ..., include_total_count: _Optional[bool] = ..., include_meta: _Optional[bool] = ..., include_topics: _Optional[bool] = ..., include_webpush_keys: _Optional[bool] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class DeviceListResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: DeviceListResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[DeviceListResult, _Mapping]] = ...) -> None: ...

class DeviceListResult(_message.Message):
    __slots__ = ("items", "next_cursor", "total_count")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Device]
    next_cursor: str
    total_count: int
    def __init__(self, items: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., next_cursor: _Optional[str] = ..., total_count: _Optional[int] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("id", "platform", "provider", "token", "user", "created_at", "updated_at", "meta", "topics", "timezone", "locale", "webpush_keys")
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    WEBPUSH_KEYS_FIELD_NUMBER: _ClassVar[int]
    id: str
    platform: str
    provider: str
    token: str
    user: str
    created_at: int
    updated_at: int
    meta: _containers.ScalarMap[str, str]
    topics: _containers.RepeatedScalarFieldContainer[str]
    timezone: str
    locale: str
    webpush_keys: str
    def __init__(self, id: _Optional[str] = ..., platform: _Optional[str] = ..., provider: _Optional[str] = ..., token: _Optional[str] = ..., user: _Optional[str] = ..., created_at: _Optional[int] = ..., updated_at: _Optional[int] = ..., meta: _Optional[_Mapping[str, str]] = ..., topics: _Optional[_Iterable[str]] = ..., timezone: _Optional[str] = ..., locale: _Optional[str] = ..., webpush_keys: _Optional[str] = ...) -> None: ...

class DeviceTopicFilter(_message.Message):
    __slots__ = ("device_ids", "device_providers", "device_platforms", "device_users", "topics", "topic_prefix")
    DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_USERS_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_PREFIX_FIELD_NUMBER: _ClassVar[int]
    device_ids: _containers.RepeatedScalarFieldContainer[str]
    device_providers: _containers.RepeatedScalarFieldContainer[str]
    device_platforms: _containers.RepeatedScalarFieldContainer[str]
    device_users: _containers.RepeatedScalarFieldContainer[str]
    topics: _containers.RepeatedScalarFieldContainer[str]
    topic_prefix: str
    def __init__(self, device_ids: _Optional[_Iterable[str]] = ..., device_providers: _Optional[_Iterable[str]] = ..., device_platforms: _Optional[_Iterable[str]] = ..., device_users: _Optional[_Iterable[str]] = ..., topics: _Optional[_Iterable[str]] = ..., topic_prefix: _Optional[str] = ...) -> None: ...

class DeviceTopicListRequest(_message.Message):
    __slots__ = ("filter", "include_total_count", "include_device", "cursor", "limit")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DEVICE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    filter: DeviceTopicFilter
    include_total_count: bool
    include_device: bool
    cursor: str
    limit: int
    def __init__(self, filter: _Optional[_Union[DeviceTopicFilter, _Mapping]] = ..., include_total_count: _Optional[bool] = ..., include_device: _Optional[bool] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class DeviceTopicListResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: DeviceTopicListResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[DeviceTopicListResult, _Mapping]] = ...) -> None: ...

class DeviceTopicListResult(_message.Message):
    __slots__ = ("items", "next_cursor", "total_count")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[DeviceTopic]
    next_cursor: str
    total_count: int
    def __init__(self, items: _Optional[_Iterable[_Union[DeviceTopic, _Mapping]]] = ..., next_cursor: _Optional[str] = ..., total_count: _Optional[int] = ...) -> None: ...

class DeviceTopic(_message.Message):
    __slots__ = ("id", "topic", "device")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    id: str
    topic: str
    device: Device
    def __init__(self, id: _Optional[str] = ..., topic: _Optional[str] = ..., device: _Optional[_Union[Device, _Mapping]] = ...) -> None: ...

class DeviceTopicUpdateRequest(_message.Message):
    __slots__ = ("device_id", "op", "topics", "user")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    op: str
    topics: _containers.RepeatedScalarFieldContainer[str]
    user: str
    def __init__(self, device_id: _Optional[str] = ..., op: _Optional[str] = ..., topics: _Optional[_Iterable[str]] = ..., user: _Optional[str] = ...) -> None: ...

class DeviceTopicUpdateResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: DeviceTopicUpdateResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[DeviceTopicUpdateResult, _Mapping]] = ...) -> None: ...

class DeviceTopicUpdateResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UserTopicFilter(_message.Message):
    __slots__ = ("users", "topics", "topic_prefix")
    USERS_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_PREFIX_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    topics: _containers.RepeatedScalarFieldContainer[str]
    topic_prefix: str
    def __init__(self, users: _Optional[_Iterable[str]] = ..., topics: _Optional[_Iterable[str]] = ..., topic_prefix: _Optional[str] = ...) -> None: ...

class UserTopicListRequest(_message.Message):
    __slots__ = ("filter", "include_total_count", "cursor", "limit")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    filter: UserTopicFilter
    include_total_count: bool
    cursor: str
    limit: int
    def __init__(self, filter: _Optional[_Union[UserTopicFilter, _Mapping]] = ..., include_total_count: _Optional[bool] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class UserTopicListResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: UserTopicListResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[UserTopicListResult, _Mapping]] = ...) -> None: ...

class UserTopicListResult(_message.Message):
    __slots__ = ("items", "next_cursor", "total_count")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[UserTopic]
    next_cursor: str
    total_count: int
    def __init__(self, items: _Optional[_Iterable[_Union[UserTopic, _Mapping]]] = ..., next_cursor: _Optional[str] = ..., total_count: _Optional[int] = ...) -> None: ...

class UserTopic(_message.Message):
    __slots__ = ("id", "user", "topic")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    id: str
    user: str
    topic: str
    def __init__(self, id: _Optional[str] = ..., user: _Optional[str] = ..., topic: _Optional[str] = ...) -> None: ...

class UserTopicUpdateRequest(_message.Message):
    __slots__ = ("user", "op", "topics")
    USER_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    user: str
    op: str
    topics: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user: _Optional[str] = ..., op: _Optional[str] = ..., topics: _Optional[_Iterable[str]] = ...) -> None: ...

class UserTopicUpdateResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: UserTopicUpdateResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[UserTopicUpdateResult, _Mapping]] = ...) -> None: ...

class UserTopicUpdateResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SendPushNotificationRequest(_message.Message):
    __slots__ = ("recipient", "notification", "uid", "send_at", "optimize_for_reliability", "limit_strategy", "analytics_uid", "localizations", "use_templating", "use_meta")
    class LocalizationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: PushLocalization
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[PushLocalization, _Mapping]] = ...) -> None: ...
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    SEND_AT_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZE_FOR_RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    ANALYTICS_UID_FIELD_NUMBER: _ClassVar[int]
    LOCALIZATIONS_FIELD_NUMBER: _ClassVar[int]
    USE_TEMPLATING_FIELD_NUMBER: _ClassVar[int]
    USE_META_FIELD_NUMBER: _ClassVar[int]
    recipient: PushRecipient
    notification: PushNotification
    uid: str
    send_at: int
    optimize_for_reliability: bool
    limit_strategy: PushLimitStrategy
    analytics_uid: str
    localizations: _containers.MessageMap[str, PushLocalization]
    use_templating: bool
    use_meta: bool
    def __init__(self, recipient: _Optional[_Union[PushRecipient, _Mapping]] = ..., notification: _Optional[_Union[PushNotification, _Mapping]] = ..., uid: _Optional[str] = ..., send_at: _Optional[int] = ..., optimize_for_reliability: _Optional[bool] = ..., limit_strategy: _Optional[_Union[PushLimitStrategy, _Mapping]] = ..., analytics_uid: _Optional[str] = ..., localizations: _Optional[_Mapping[str, PushLocalization]] = ..., use_templating: _Optional[bool] = ..., use_meta: _Optional[bool] = ...) -> None: ...

class PushRecipient(_message.Message):
    __slots__ = ("filter", "fcm_tokens", "fcm_topic", "fcm_condition", "hms_tokens", "hms_topic", "hms_condition", "apns_tokens", "webpush_tokens")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FCM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FCM_TOPIC_FIELD_NUMBER: _ClassVar[int]
    FCM_CONDITION_FIELD_NUMBER: _ClassVar[int]
    HMS_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HMS_TOPIC_FIELD_NUMBER: _ClassVar[int]
    HMS_CONDITION_FIELD_NUMBER: _ClassVar[int]
    APNS_TOKENS_FIELD_NUMBER: _ClassVar[int]
    WEBPUSH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    filter: DeviceFilter
    fcm_tokens: _containers.RepeatedScalarFieldContainer[str]
    fcm_topic: str
    fcm_condition: str
    hms_tokens: _containers.RepeatedScalarFieldContainer[str]
    hms_topic: str
    hms_condition: str
    apns_tokens: _containers.RepeatedScalarFieldContainer[str]
    webpush_tokens: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, filter: _Optional[_Union[DeviceFilter, _Mapping]] = ..., fcm_tokens: _Optional[_Iterable[str]] = ..., fcm_topic: _Optional[str] = ..., fcm_condition: _Optional[str] = ..., hms_tokens: _Optional[_Iterable[str]] = ..., hms_topic: _Optional[str] = ..., hms_condition: _Optional[str] = ..., apns_tokens: _Optional[_Iterable[str]] = ..., webpush_tokens: _Optional[_Iterable[str]] = ...) -> None: ...

class PushNotification(_message.Message):
    __slots__ = ("fcm", "hms", "apns", "webpush", "expire_at")
    FCM_FIELD_NUMBER: _ClassVar[int]
    HMS_FIELD_NUMBER: _ClassVar[int]
    APNS_FIELD_NUMBER: _ClassVar[int]
    WEBPUSH_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    fcm: FcmPushNotification
    hms: HmsPushNotification
    apns: ApnsPushNotification
    webpush: WebPushPushNotification
    expire_at: int
    def __init__(self, fcm: _Optional[_Union[FcmPushNotification, _Mapping]] = ..., hms: _Optional[_Union[HmsPushNotification, _Mapping]] = ..., apns: _Optional[_Union[ApnsPushNotification, _Mapping]] = ..., webpush: _Optional[_Union[WebPushPushNotification, _Mapping]] = ..., expire_at: _Optional[int] = ...) -> None: ...

class FcmPushNotification(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: bytes
    def __init__(self, message: _Optional[bytes] = ...) -> None: ...

class HmsPushNotification(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: bytes
    def __init__(self, message: _Optional[bytes] = ...) -> None: ...

class ApnsPushNotification(_message.Message):
    __slots__ = ("headers", "payload")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    headers: _containers.ScalarMap[str, str]
    payload: bytes
    def __init__(self, headers: _Optional[_Mapping[str, str]] = ..., payload: _Optional[bytes] = ...) -> None: ...

class WebPushPushNotification(_message.Message):
    __slots__ = ("headers", "payload")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    headers: _containers.ScalarMap[str, str]
    payload: bytes
    def __init__(self, headers: _Optional[_Mapping[str, str]] = ..., payload: _Optional[bytes] = ...) -> None: ...

class PushLocalization(_message.Message):
    __slots__ = ("translations",)
    class TranslationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TRANSLATIONS_FIELD_NUMBER: _ClassVar[int]
    translations: _containers.ScalarMap[str, str]
    def __init__(self, translations: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PushLimitStrategy(_message.Message):
    __slots__ = ("rate_limit", "time_limit")
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_FIELD_NUMBER: _ClassVar[int]
    rate_limit: PushRateLimitStrategy
    time_limit: PushTimeLimitStrategy
    def __init__(self, rate_limit: _Optional[_Union[PushRateLimitStrategy, _Mapping]] = ..., time_limit: _Optional[_Union[PushTimeLimitStrategy, _Mapping]] = ...) -> None: ...

class PushRateLimitStrategy(_message.Message):
    __slots__ = ("key", "policies", "drop_if_rate_limited")
    KEY_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    DROP_IF_RATE_LIMITED_FIELD_NUMBER: _ClassVar[int]
    key: str
    policies: _containers.RepeatedCompositeFieldContainer[RateLimitPolicy]
    drop_if_rate_limited: bool
    def __init__(self, key: _Optional[str] = ..., policies: _Optional[_Iterable[_Union[RateLimitPolicy, _Mapping]]] = ..., drop_if_rate_limited: _Optional[bool] = ...) -> None: ...

class RateLimitPolicy(_message.Message):
    __slots__ = ("rate", "interval_ms")
    RATE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    rate: int
    interval_ms: int
    def __init__(self, rate: _Optional[int] = ..., interval_ms: _Optional[int] = ...) -> None: ...

class PushTimeLimitStrategy(_message.Message):
    __slots__ = ("send_after_time", "send_before_time", "no_tz_send_now")
    SEND_AFTER_TIME_FIELD_NUMBER: _ClassVar[int]
    SEND_BEFORE_TIME_FIELD_NUMBER: _ClassVar[int]
    NO_TZ_SEND_NOW_FIELD_NUMBER: _ClassVar[int]
    send_after_time: str
    send_before_time: str
    no_tz_send_now: bool
    def __init__(self, send_after_time: _Optional[str] = ..., send_before_time: _Optional[str] = ..., no_tz_send_now: _Optional[bool] = ...) -> None: ...

class SendPushNotificationResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: SendPushNotificationResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[SendPushNotificationResult, _Mapping]] = ...) -> None: ...

class SendPushNotificationResult(_message.Message):
    __slots__ = ("uid",)
    UID_FIELD_NUMBER: _ClassVar[int]
    uid: str
    def __init__(self, uid: _Optional[str] = ...) -> None: ...

class UpdatePushStatusRequest(_message.Message):
    __slots__ = ("analytics_uid", "status", "device_id", "msg_id")
    ANALYTICS_UID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    analytics_uid: str
    status: str
    device_id: str
    msg_id: str
    def __init__(self, analytics_uid: _Optional[str] = ..., status: _Optional[str] = ..., device_id: _Optional[str] = ..., msg_id: _Optional[str] = ...) -> None: ...

class UpdatePushStatusResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: UpdatePushStatusResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[UpdatePushStatusResult, _Mapping]] = ...) -> None: ...

class UpdatePushStatusResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CancelPushRequest(_message.Message):
    __slots__ = ("uid",)
    UID_FIELD_NUMBER: _ClassVar[int]
    uid: str
    def __init__(self, uid: _Optional[str] = ...) -> None: ...

class CancelPushResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: CancelPushResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[CancelPushResult, _Mapping]] = ...) -> None: ...

class CancelPushResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MapPublishRequest(_message.Message):
    __slots__ = ("channel", "key", "data", "b64data", "stream_data", "b64stream_data", "tags", "idempotency_key", "delta", "version", "version_epoch", "score", "key_mode")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    B64DATA_FIELD_NUMBER: _ClassVar[int]
    STREAM_DATA_FIELD_NUMBER: _ClassVar[int]
    B64STREAM_DATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_EPOCH_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    KEY_MODE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    key: str
    data: bytes
    b64data: str
    stream_data: bytes
    b64stream_data: str
    tags: _containers.ScalarMap[str, str]
    idempotency_key: str
    delta: bool
    version: int
    version_epoch: str
    score: int
    key_mode: str
    def __init__(self, channel: _Optional[str] = ..., key: _Optional[str] = ..., data: _Optional[bytes] = ..., b64data: _Optional[str] = ..., stream_data: _Optional[bytes] = ..., b64stream_data: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ..., delta: _Optional[bool] = ..., version: _Optional[int] = ..., version_epoch: _Optional[str] = ..., score: _Optional[int] = ..., key_mode: _Optional[str] = ...) -> None: ...

class MapPublishResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: MapPublishResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[MapPublishResult, _Mapping]] = ...) -> None: ...

class MapPublishResult(_message.Message):
    __slots__ = ("offset", "epoch", "suppressed", "suppress_reason")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESS_REASON_FIELD_NUMBER: _ClassVar[int]
    offset: int
    epoch: str
    suppressed: bool
    suppress_reason: str
    def __init__(self, offset: _Optional[int] = ..., epoch: _Optional[str] = ..., suppressed: _Optional[bool] = ..., suppress_reason: _Optional[str] = ...) -> None: ...

class MapRemoveRequest(_message.Message):
    __slots__ = ("channel", "key", "idempotency_key")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    channel: str
    key: str
    idempotency_key: str
    def __init__(self, channel: _Optional[str] = ..., key: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class MapRemoveResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: MapRemoveResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[MapRemoveResult, _Mapping]] = ...) -> None: ...

class MapRemoveResult(_message.Message):
    __slots__ = ("offset", "epoch", "suppressed", "suppress_reason")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESS_REASON_FIELD_NUMBER: _ClassVar[int]
    offset: int
    epoch: str
    suppressed: bool
    suppress_reason: str
    def __init__(self, offset: _Optional[int] = ..., epoch: _Optional[str] = ..., suppressed: _Optional[bool] = ..., suppress_reason: _Optional[str] = ...) -> None: ...

class MapReadStateRequest(_message.Message):
    __slots__ = ("channel", "cursor", "limit", "key", "asc", "revision_offset", "revision_epoch")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ASC_FIELD_NUMBER: _ClassVar[int]
    REVISION_OFFSET_FIELD_NUMBER: _ClassVar[int]
    REVISION_EPOCH_FIELD_NUMBER: _ClassVar[int]
    channel: str
    cursor: str
    limit: int
    key: str
    asc: bool
    revision_offset: int
    revision_epoch: str
    def __init__(self, channel: _Optional[str] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ..., key: _Optional[str] = ..., asc: _Optional[bool] = ..., revision_offset: _Optional[int] = ..., revision_epoch: _Optional[str] = ...) -> None: ...

class MapReadStateResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: MapReadStateResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[MapReadStateResult, _Mapping]] = ...) -> None: ...

class MapReadStateResult(_message.Message):
    __slots__ = ("entries", "offset", "epoch", "cursor")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[MapEntry]
    offset: int
    epoch: str
    cursor: str
    def __init__(self, entries: _Optional[_Iterable[_Union[MapEntry, _Mapping]]] = ..., offset: _Optional[int] = ..., epoch: _Optional[str] = ..., cursor: _Optional[str] = ...) -> None: ...

class MapEntry(_message.Message):
    __slots__ = ("key", "data", "tags", "offset", "score", "removed", "time")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    key: str
    data: bytes
    tags: _containers.ScalarMap[str, str]
    offset: int
    score: int
    removed: bool
    time: int
    def __init__(self, key: _Optional[str] = ..., data: _Optional[bytes] = ..., tags: _Optional[_Mapping[str, str]] = ..., offset: _Optional[int] = ..., score: _Optional[int] = ..., removed: _Optional[bool] = ..., time: _Optional[int] = ...) -> None: ...

class MapReadStreamRequest(_message.Message):
    __slots__ = ("channel", "since_offset", "since_epoch", "limit", "reverse")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SINCE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SINCE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    since_offset: int
    since_epoch: str
    limit: int
    reverse: bool
    def __init__(self, channel: _Optional[str] = ..., since_offset: _Optional[int] = ..., since_epoch: _Optional[str] = ..., limit: _Optional[int] = ..., reverse: _Optional[bool] = ...) -> None: ...

class MapReadStreamResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: MapReadStreamResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[MapReadStreamResult, _Mapping]] = ...) -> None: ...

class MapReadStreamResult(_message.Message):
    __slots__ = ("entries", "offset", "epoch")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[MapEntry]
    offset: int
    epoch: str
    def __init__(self, entries: _Optional[_Iterable[_Union[MapEntry, _Mapping]]] = ..., offset: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class MapStatsRequest(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: str
    def __init__(self, channel: _Optional[str] = ...) -> None: ...

class MapStatsResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: MapStatsResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[MapStatsResult, _Mapping]] = ...) -> None: ...

class MapStatsResult(_message.Message):
    __slots__ = ("num_keys",)
    NUM_KEYS_FIELD_NUMBER: _ClassVar[int]
    num_keys: int
    def __init__(self, num_keys: _Optional[int] = ...) -> None: ...

class MapClearRequest(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: str
    def __init__(self, channel: _Optional[str] = ...) -> None: ...

class MapClearResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: MapClearResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[MapClearResult, _Mapping]] = ...) -> None: ...

class MapClearResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SharedPollPublishRequest(_message.Message):
    __slots__ = ("channel", "key", "data", "b64data", "version", "epoch")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    B64DATA_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    channel: str
    key: str
    data: bytes
    b64data: str
    version: int
    epoch: str
    def __init__(self, channel: _Optional[str] = ..., key: _Optional[str] = ..., data: _Optional[bytes] = ..., b64data: _Optional[str] = ..., version: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class SharedPollPublishResponse(_message.Message):
    __slots__ = ("error", "result")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    error: Error
    result: SharedPollPublishResult
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ..., result: _Optional[_Union[SharedPollPublishResult, _Mapping]] = ...) -> None: ...

class SharedPollPublishResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
