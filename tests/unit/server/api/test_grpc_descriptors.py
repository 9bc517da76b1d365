"""The wire facts of rotary's api.proto against a table of Centrifugo v6.9.1's: package, service,
methods with their request and response messages, and every message's fields (name, number, type,
repeated or map). A GRPC client generated from Centrifugo's own file finds the same method paths
and reads the same bytes only while these agree, so any drift of rotary's proto fails here.

The table was read off Centrifugo's internal/apiproto/api.proto; the second test checks it against
that file itself, compiled by grpc_tools.protoc in a subprocess from the Go module cache (the module
tests/tools/go-deps installs), so the table cannot drift from Centrifugo either.
See https://centrifugal.dev/docs/server/server_api#grpc-api.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from helpers.env import IN_CI

from rotary.server.api._pb import api_pb2

CENTRIFUGO_MODULE: Final = "github.com/centrifugal/centrifugo/v6@v6.9.1"
PACKAGE: Final = "centrifugal.centrifugo.api"
SERVICE: Final = "CentrifugoApi"

METHODS: Final = (
    "Batch(BatchRequest) BatchResponse",
    "Publish(PublishRequest) PublishResponse",
    "Broadcast(BroadcastRequest) BroadcastResponse",
    "Subscribe(SubscribeRequest) SubscribeResponse",
    "Unsubscribe(UnsubscribeRequest) UnsubscribeResponse",
    "Disconnect(DisconnectRequest) DisconnectResponse",
    "Presence(PresenceRequest) PresenceResponse",
    "PresenceStats(PresenceStatsRequest) PresenceStatsResponse",
    "History(HistoryRequest) HistoryResponse",
    "HistoryRemove(HistoryRemoveRequest) HistoryRemoveResponse",
    "Info(InfoRequest) InfoResponse",
    "RPC(RPCRequest) RPCResponse",
    "Refresh(RefreshRequest) RefreshResponse",
    "Channels(ChannelsRequest) ChannelsResponse",
    "Connections(ConnectionsRequest) ConnectionsResponse",
    "UpdateUserStatus(UpdateUserStatusRequest) UpdateUserStatusResponse",
    "GetUserStatus(GetUserStatusRequest) GetUserStatusResponse",
    "DeleteUserStatus(DeleteUserStatusRequest) DeleteUserStatusResponse",
    "BlockUser(BlockUserRequest) BlockUserResponse",
    "UnblockUser(UnblockUserRequest) UnblockUserResponse",
    "RevokeToken(RevokeTokenRequest) RevokeTokenResponse",
    "InvalidateUserTokens(InvalidateUserTokensRequest) InvalidateUserTokensResponse",
    "DeviceRegister(DeviceRegisterRequest) DeviceRegisterResponse",
    "DeviceUpdate(DeviceUpdateRequest) DeviceUpdateResponse",
    "DeviceRemove(DeviceRemoveRequest) DeviceRemoveResponse",
    "DeviceList(DeviceListRequest) DeviceListResponse",
    "DeviceTopicList(DeviceTopicListRequest) DeviceTopicListResponse",
    "DeviceTopicUpdate(DeviceTopicUpdateRequest) DeviceTopicUpdateResponse",
    "UserTopicList(UserTopicListRequest) UserTopicListResponse",
    "UserTopicUpdate(UserTopicUpdateRequest) UserTopicUpdateResponse",
    "SendPushNotification(SendPushNotificationRequest) SendPushNotificationResponse",
    "UpdatePushStatus(UpdatePushStatusRequest) UpdatePushStatusResponse",
    "CancelPush(CancelPushRequest) CancelPushResponse",
    "MapPublish(MapPublishRequest) MapPublishResponse",
    "MapRemove(MapRemoveRequest) MapRemoveResponse",
    "MapReadState(MapReadStateRequest) MapReadStateResponse",
    "MapReadStream(MapReadStreamRequest) MapReadStreamResponse",
    "MapStats(MapStatsRequest) MapStatsResponse",
    "MapClear(MapClearRequest) MapClearResponse",
    "SharedPollPublish(SharedPollPublishRequest) SharedPollPublishResponse",
)
MESSAGES: Final[dict[str, tuple[str, ...]]] = {
    "ApnsPushNotification": ("headers=1:map<string,string>", "payload=2:bytes"),
    "BatchRequest": ("commands=1:repeated Command", "parallel=2:bool"),
    "BatchResponse": ("replies=1:repeated Reply",),
    "BlockUserRequest": ("expire_at=1:int64", "user=2:string"),
    "BlockUserResponse": ("error=1:Error", "result=2:BlockUserResult"),
    "BlockUserResult": (),
    "BoolValue": ("value=1:bool",),
    "BroadcastRequest": (
        "channels=1:repeated string",
        "data=2:bytes",
        "b64data=3:string",
        "skip_history=4:bool",
        "tags=5:map<string,string>",
        "idempotency_key=6:string",
        "delta=7:bool",
        "version=8:uint64",
        "version_epoch=9:string",
    ),
    "BroadcastResponse": ("error=1:Error", "result=2:BroadcastResult"),
    "BroadcastResult": ("responses=1:repeated PublishResponse",),
    "CancelPushRequest": ("uid=1:string",),
    "CancelPushResponse": ("error=1:Error", "result=2:CancelPushResult"),
    "CancelPushResult": (),
    "ChannelContext": ("source=1:uint32",),
    "ChannelInfo": ("num_clients=1:uint32",),
    "ChannelsRequest": ("pattern=1:string",),
    "ChannelsResponse": ("error=1:Error", "result=2:ChannelsResult"),
    "ChannelsResult": ("channels=1:map<string,ChannelInfo>",),
    "ClientInfo": ("user=1:string", "client=2:string", "conn_info=3:bytes", "chan_info=4:bytes"),
    "Command": (
        "publish=4:PublishRequest",
        "broadcast=5:BroadcastRequest",
        "subscribe=6:SubscribeRequest",
        "unsubscribe=7:UnsubscribeRequest",
        "disconnect=8:DisconnectRequest",
        "presence=9:PresenceRequest",
        "presence_stats=10:PresenceStatsRequest",
        "history=11:HistoryRequest",
        "history_remove=12:HistoryRemoveRequest",
        "info=13:InfoRequest",
        "rpc=14:RPCRequest",
        "refresh=15:RefreshRequest",
        "channels=16:ChannelsRequest",
        "connections=17:ConnectionsRequest",
        "update_user_status=18:UpdateUserStatusRequest",
        "get_user_status=19:GetUserStatusRequest",
        "delete_user_status=20:DeleteUserStatusRequest",
        "block_user=21:BlockUserRequest",
        "unblock_user=22:UnblockUserRequest",
        "revoke_token=23:RevokeTokenRequest",
        "invalidate_user_tokens=24:InvalidateUserTokensRequest",
        "device_register=25:DeviceRegisterRequest",
        "device_update=26:DeviceUpdateRequest",
        "device_remove=27:DeviceRemoveRequest",
        "device_list=28:DeviceListRequest",
        "device_topic_list=29:DeviceTopicListRequest",
        "device_topic_update=30:DeviceTopicUpdateRequest",
        "user_topic_list=31:UserTopicListRequest",
        "user_topic_update=32:UserTopicUpdateRequest",
        "send_push_notification=33:SendPushNotificationRequest",
        "update_push_status=34:UpdatePushStatusRequest",
        "cancel_push=35:CancelPushRequest",
        "map_publish=36:MapPublishRequest",
        "map_remove=37:MapRemoveRequest",
        "map_read_state=38:MapReadStateRequest",
        "map_read_stream=39:MapReadStreamRequest",
        "map_stats=40:MapStatsRequest",
        "map_clear=41:MapClearRequest",
        "shared_poll_publish=42:SharedPollPublishRequest",
    ),
    "ConnectionInfo": (
        "app_name=1:string",
        "app_version=2:string",
        "transport=3:string",
        "protocol=4:string",
        "user=8:string",
        "state=9:ConnectionState",
        "connected_at_ms=10:int64",
        "ping_pong_latency_ms=11:int64",
        "labels=12:map<string,string>",
    ),
    "ConnectionState": (
        "channels=1:map<string,ChannelContext>",
        "connection_token=2:ConnectionTokenInfo",
        "subscription_tokens=3:map<string,SubscriptionTokenInfo>",
        "meta=4:bytes",
    ),
    "ConnectionTokenInfo": ("uid=1:string", "issued_at=2:int64"),
    "ConnectionsRequest": ("user=1:string", "expression=2:string", "label_filter=3:FilterNode"),
    "ConnectionsResponse": ("error=1:Error", "result=2:ConnectionsResult"),
    "ConnectionsResult": ("connections=1:map<string,ConnectionInfo>",),
    "DeleteUserStatusRequest": ("users=1:repeated string",),
    "DeleteUserStatusResponse": ("error=1:Error", "result=2:DeleteUserStatusResult"),
    "DeleteUserStatusResult": (),
    "Device": (
        "id=1:string",
        "platform=2:string",
        "provider=3:string",
        "token=4:string",
        "user=5:string",
        "created_at=6:int64",
        "updated_at=7:int64",
        "meta=10:map<string,string>",
        "topics=11:repeated string",
        "timezone=12:string",
        "locale=13:string",
        "webpush_keys=14:string",
    ),
    "DeviceFilter": (
        "ids=1:repeated string",
        "users=2:repeated string",
        "topics=3:repeated string",
        "providers=4:repeated string",
        "platforms=5:repeated string",
    ),
    "DeviceListRequest": (
        "filter=1:DeviceFilter",
        "include_total_count=2:bool",
        "include_meta=3:bool",
        "include_topics=4:bool",
        "include_webpush_keys=5:bool",
        "cursor=10:string",
        "limit=11:int32",
    ),
    "DeviceListResponse": ("error=1:Error", "result=2:DeviceListResult"),
    "DeviceListResult": ("items=1:repeated Device", "next_cursor=2:string", "total_count=3:int64"),
    "DeviceLocaleUpdate": ("locale=1:string",),
    "DeviceMetaUpdate": ("meta=1:map<string,string>",),
    "DeviceRegisterRequest": (
        "id=1:string",
        "provider=2:string",
        "token=3:string",
        "platform=4:string",
        "user=5:string",
        "meta=6:map<string,string>",
        "topics=7:repeated string",
        "timezone=8:string",
        "locale=9:string",
    ),
    "DeviceRegisterResponse": ("error=1:Error", "result=2:DeviceRegisterResult"),
    "DeviceRegisterResult": ("id=1:string",),
    "DeviceRemoveRequest": ("ids=1:repeated string", "users=2:repeated string"),
    "DeviceRemoveResponse": ("error=1:Error", "result=2:DeviceRemoveResult"),
    "DeviceRemoveResult": (),
    "DeviceTimezoneUpdate": ("timezone=1:string",),
    "DeviceTopic": ("id=1:string", "topic=2:string", "device=3:Device"),
    "DeviceTopicFilter": (
        "device_ids=1:repeated string",
        "device_providers=2:repeated string",
        "device_platforms=3:repeated string",
        "device_users=4:repeated string",
        "topics=5:repeated string",
        "topic_prefix=6:string",
    ),
    "DeviceTopicListRequest": (
        "filter=1:DeviceTopicFilter",
        "include_total_count=2:bool",
        "include_device=3:bool",
        "cursor=10:string",
        "limit=11:int32",
    ),
    "DeviceTopicListResponse": ("error=1:Error", "result=2:DeviceTopicListResult"),
    "DeviceTopicListResult": ("items=1:repeated DeviceTopic", "next_cursor=2:string", "total_count=3:int64"),
    "DeviceTopicUpdateRequest": (
        "device_id=1:string",
        "op=2:string",
        "topics=3:repeated string",
        "user=4:string",
    ),
    "DeviceTopicUpdateResponse": ("error=1:Error", "result=2:DeviceTopicUpdateResult"),
    "DeviceTopicUpdateResult": (),
    "DeviceTopicsUpdate": ("op=1:string", "topics=2:repeated string"),
    "DeviceUpdateRequest": (
        "ids=1:repeated string",
        "users=2:repeated string",
        "user_update=4:DeviceUserUpdate",
        "meta_update=5:DeviceMetaUpdate",
        "topics_update=6:DeviceTopicsUpdate",
        "timezone_update=7:DeviceTimezoneUpdate",
        "locale_update=8:DeviceLocaleUpdate",
    ),
    "DeviceUpdateResponse": ("error=1:Error", "result=2:DeviceUpdateResult"),
    "DeviceUpdateResult": (),
    "DeviceUserUpdate": ("user=1:string",),
    "Disconnect": ("code=1:uint32", "reason=2:string"),
    "DisconnectRequest": (
        "user=1:string",
        "disconnect=2:Disconnect",
        "client=3:string",
        "whitelist=4:repeated string",
        "session=5:string",
        "label_filter=6:FilterNode",
        "all_users=7:bool",
    ),
    "DisconnectResponse": ("error=1:Error", "result=2:DisconnectResult"),
    "DisconnectResult": (),
    "Error": ("code=1:uint32", "message=2:string"),
    "FcmPushNotification": ("message=1:bytes",),
    "FilterNode": (
        "op=1:string",
        "key=2:string",
        "cmp=3:string",
        "val=4:string",
        "vals=5:repeated string",
        "nodes=6:repeated FilterNode",
    ),
    "GetUserStatusRequest": ("users=1:repeated string",),
    "GetUserStatusResponse": ("error=1:Error", "result=2:GetUserStatusResult"),
    "GetUserStatusResult": ("statuses=1:repeated UserStatus",),
    "HistoryRemoveRequest": ("channel=1:string",),
    "HistoryRemoveResponse": ("error=1:Error", "result=2:HistoryRemoveResult"),
    "HistoryRemoveResult": (),
    "HistoryRequest": ("channel=1:string", "limit=2:int32", "since=3:StreamPosition", "reverse=4:bool"),
    "HistoryResponse": ("error=1:Error", "result=2:HistoryResult"),
    "HistoryResult": ("publications=1:repeated Publication", "epoch=2:string", "offset=3:uint64"),
    "HmsPushNotification": ("message=1:bytes",),
    "InfoRequest": (),
    "InfoResponse": ("error=1:Error", "result=2:InfoResult"),
    "InfoResult": ("nodes=1:repeated NodeResult",),
    "Int32Value": ("value=1:int32",),
    "InvalidateUserTokensRequest": (
        "expire_at=1:int64",
        "user=2:string",
        "issued_before=3:int64",
        "channel=4:string",
    ),
    "InvalidateUserTokensResponse": ("error=1:Error", "result=2:InvalidateUserTokensResult"),
    "InvalidateUserTokensResult": (),
    "MapClearRequest": ("channel=1:string",),
    "MapClearResponse": ("error=1:Error", "result=2:MapClearResult"),
    "MapClearResult": (),
    "MapEntry": (
        "key=1:string",
        "data=2:bytes",
        "tags=3:map<string,string>",
        "offset=4:uint64",
        "score=5:int64",
        "removed=6:bool",
        "time=7:int64",
    ),
    "MapPublishRequest": (
        "channel=1:string",
        "key=2:string",
        "data=3:bytes",
        "b64data=4:string",
        "stream_data=5:bytes",
        "b64stream_data=6:string",
        "tags=7:map<string,string>",
        "idempotency_key=8:string",
        "delta=9:bool",
        "version=10:uint64",
        "version_epoch=11:string",
        "score=12:int64",
        "key_mode=13:string",
    ),
    "MapPublishResponse": ("error=1:Error", "result=2:MapPublishResult"),
    "MapPublishResult": (
        "offset=1:uint64",
        "epoch=2:string",
        "suppressed=3:bool",
        "suppress_reason=4:string",
    ),
    "MapReadStateRequest": (
        "channel=1:string",
        "cursor=2:string",
        "limit=3:int32",
        "key=4:string",
        "asc=5:bool",
        "revision_offset=6:uint64",
        "revision_epoch=7:string",
    ),
    "MapReadStateResponse": ("error=1:Error", "result=2:MapReadStateResult"),
    "MapReadStateResult": (
        "entries=1:repeated MapEntry",
        "offset=2:uint64",
        "epoch=3:string",
        "cursor=4:string",
    ),
    "MapReadStreamRequest": (
        "channel=1:string",
        "since_offset=2:uint64",
        "since_epoch=3:string",
        "limit=4:int32",
        "reverse=5:bool",
    ),
    "MapReadStreamResponse": ("error=1:Error", "result=2:MapReadStreamResult"),
    "MapReadStreamResult": ("entries=1:repeated MapEntry", "offset=2:uint64", "epoch=3:string"),
    "MapRemoveRequest": ("channel=1:string", "key=2:string", "idempotency_key=3:string"),
    "MapRemoveResponse": ("error=1:Error", "result=2:MapRemoveResult"),
    "MapRemoveResult": ("offset=1:uint64", "epoch=2:string", "suppressed=3:bool", "suppress_reason=4:string"),
    "MapStatsRequest": ("channel=1:string",),
    "MapStatsResponse": ("error=1:Error", "result=2:MapStatsResult"),
    "MapStatsResult": ("num_keys=1:int32",),
    "Metrics": ("interval=1:double", "items=2:map<string,double>"),
    "NodeResult": (
        "uid=1:string",
        "name=2:string",
        "version=3:string",
        "num_clients=4:uint32",
        "num_users=5:uint32",
        "num_channels=6:uint32",
        "uptime=7:uint32",
        "metrics=8:Metrics",
        "process=9:Process",
        "num_subs=10:uint32",
    ),
    "PresenceRequest": ("channel=1:string",),
    "PresenceResponse": ("error=1:Error", "result=2:PresenceResult"),
    "PresenceResult": ("presence=1:map<string,ClientInfo>",),
    "PresenceStatsRequest": ("channel=1:string",),
    "PresenceStatsResponse": ("error=1:Error", "result=2:PresenceStatsResult"),
    "PresenceStatsResult": ("num_clients=1:uint32", "num_users=2:uint32"),
    "Process": ("cpu=1:double", "rss=2:int64"),
    "Publication": ("data=2:bytes", "info=3:ClientInfo", "offset=4:uint64", "tags=5:map<string,string>"),
    "PublishRequest": (
        "channel=1:string",
        "data=2:bytes",
        "b64data=3:string",
        "skip_history=4:bool",
        "tags=5:map<string,string>",
        "idempotency_key=6:string",
        "delta=7:bool",
        "version=8:uint64",
        "version_epoch=9:string",
    ),
    "PublishResponse": ("error=1:Error", "result=2:PublishResult"),
    "PublishResult": ("offset=1:uint64", "epoch=2:string"),
    "PushLimitStrategy": ("rate_limit=1:PushRateLimitStrategy", "time_limit=2:PushTimeLimitStrategy"),
    "PushLocalization": ("translations=1:map<string,string>",),
    "PushNotification": (
        "fcm=1:FcmPushNotification",
        "hms=2:HmsPushNotification",
        "apns=3:ApnsPushNotification",
        "webpush=4:WebPushPushNotification",
        "expire_at=5:int64",
    ),
    "PushRateLimitStrategy": (
        "key=1:string",
        "policies=2:repeated RateLimitPolicy",
        "drop_if_rate_limited=3:bool",
    ),
    "PushRecipient": (
        "filter=1:DeviceFilter",
        "fcm_tokens=2:repeated string",
        "fcm_topic=3:string",
        "fcm_condition=4:string",
        "hms_tokens=5:repeated string",
        "hms_topic=6:string",
        "hms_condition=7:string",
        "apns_tokens=8:repeated string",
        "webpush_tokens=9:repeated string",
    ),
    "PushTimeLimitStrategy": (
        "send_after_time=1:string",
        "send_before_time=2:string",
        "no_tz_send_now=3:bool",
    ),
    "RPCRequest": ("method=1:string", "params=2:bytes"),
    "RPCResponse": ("error=1:Error", "result=2:RPCResult"),
    "RPCResult": ("data=1:bytes",),
    "RateLimitPolicy": ("rate=1:int64", "interval_ms=2:int32"),
    "RefreshRequest": (
        "user=1:string",
        "client=2:string",
        "expired=3:bool",
        "expire_at=4:int64",
        "info=5:bytes",
        "session=6:string",
        "label_filter=7:FilterNode",
        "all_users=8:bool",
    ),
    "RefreshResponse": ("error=1:Error", "result=2:RefreshResult"),
    "RefreshResult": (),
    "Reply": (
        "error=2:Error",
        "publish=4:PublishResult",
        "broadcast=5:BroadcastResult",
        "subscribe=6:SubscribeResult",
        "unsubscribe=7:UnsubscribeResult",
        "disconnect=8:DisconnectResult",
        "presence=9:PresenceResult",
        "presence_stats=10:PresenceStatsResult",
        "history=11:HistoryResult",
        "history_remove=12:HistoryRemoveResult",
        "info=13:InfoResult",
        "rpc=14:RPCResult",
        "refresh=15:RefreshResult",
        "channels=16:ChannelsResult",
        "connections=17:ConnectionsResult",
        "update_user_status=18:UpdateUserStatusResult",
        "get_user_status=19:GetUserStatusResult",
        "delete_user_status=20:DeleteUserStatusResult",
        "block_user=21:BlockUserResult",
        "unblock_user=22:UnblockUserResult",
        "revoke_token=23:RevokeTokenResult",
        "invalidate_user_tokens=24:InvalidateUserTokensResult",
        "device_register=25:DeviceRegisterResult",
        "device_update=26:DeviceUpdateResult",
        "device_remove=27:DeviceRemoveResult",
        "device_list=28:DeviceListResult",
        "device_topic_list=29:DeviceTopicListResult",
        "device_topic_update=30:DeviceTopicUpdateResult",
        "user_topic_list=31:UserTopicListResult",
        "user_topic_update=32:UserTopicUpdateResult",
        "send_push_notification=33:SendPushNotificationResult",
        "update_push_status=34:UpdatePushStatusResult",
        "cancel_push=35:CancelPushResult",
        "map_publish=36:MapPublishResult",
        "map_remove=37:MapRemoveResult",
        "map_read_state=38:MapReadStateResult",
        "map_read_stream=39:MapReadStreamResult",
        "map_stats=40:MapStatsResult",
        "map_clear=41:MapClearResult",
        "shared_poll_publish=42:SharedPollPublishResult",
    ),
    "RevokeTokenRequest": ("expire_at=1:int64", "uid=2:string"),
    "RevokeTokenResponse": ("error=1:Error", "result=2:RevokeTokenResult"),
    "RevokeTokenResult": (),
    "SendPushNotificationRequest": (
        "recipient=1:PushRecipient",
        "notification=2:PushNotification",
        "uid=3:string",
        "send_at=4:int64",
        "optimize_for_reliability=5:bool",
        "limit_strategy=6:PushLimitStrategy",
        "analytics_uid=7:string",
        "localizations=8:map<string,PushLocalization>",
        "use_templating=9:bool",
        "use_meta=10:bool",
    ),
    "SendPushNotificationResponse": ("error=1:Error", "result=2:SendPushNotificationResult"),
    "SendPushNotificationResult": ("uid=1:string",),
    "SharedPollPublishRequest": (
        "channel=1:string",
        "key=2:string",
        "data=3:bytes",
        "b64data=4:string",
        "version=5:uint64",
        "epoch=6:string",
    ),
    "SharedPollPublishResponse": ("error=1:Error", "result=2:SharedPollPublishResult"),
    "SharedPollPublishResult": (),
    "StreamPosition": ("offset=1:uint64", "epoch=2:string"),
    "SubscribeOptionOverride": (
        "presence=1:BoolValue",
        "join_leave=2:BoolValue",
        "force_recovery=3:BoolValue",
        "force_positioning=4:BoolValue",
        "force_push_join_leave=5:BoolValue",
    ),
    "SubscribeRequest": (
        "channel=1:string",
        "user=2:string",
        "expire_at=3:int64",
        "info=4:bytes",
        "b64info=5:string",
        "client=6:string",
        "data=7:bytes",
        "b64data=8:string",
        "recover_since=9:StreamPosition",
        "override=10:SubscribeOptionOverride",
        "session=11:string",
        "label_filter=12:FilterNode",
        "all_users=13:bool",
    ),
    "SubscribeResponse": ("error=1:Error", "result=2:SubscribeResult"),
    "SubscribeResult": (),
    "SubscriptionTokenInfo": ("uid=1:string", "issued_at=2:int64"),
    "UnblockUserRequest": ("user=1:string",),
    "UnblockUserResponse": ("error=1:Error", "result=2:UnblockUserResult"),
    "UnblockUserResult": (),
    "UnsubscribeRequest": (
        "channel=1:string",
        "user=2:string",
        "client=3:string",
        "session=4:string",
        "label_filter=5:FilterNode",
        "all_users=6:bool",
    ),
    "UnsubscribeResponse": ("error=1:Error", "result=2:UnsubscribeResult"),
    "UnsubscribeResult": (),
    "UpdatePushStatusRequest": (
        "analytics_uid=1:string",
        "status=2:string",
        "device_id=3:string",
        "msg_id=4:string",
    ),
    "UpdatePushStatusResponse": ("error=1:Error", "result=2:UpdatePushStatusResult"),
    "UpdatePushStatusResult": (),
    "UpdateUserStatusRequest": ("users=1:repeated string", "state=2:string"),
    "UpdateUserStatusResponse": ("error=1:Error", "result=2:UpdateUserStatusResult"),
    "UpdateUserStatusResult": (),
    "UserStatus": ("user=1:string", "active=2:int64", "online=3:int64", "state=4:string"),
    "UserTopic": ("id=1:string", "user=2:string", "topic=3:string"),
    "UserTopicFilter": ("users=1:repeated string", "topics=2:repeated string", "topic_prefix=3:string"),
    "UserTopicListRequest": (
        "filter=1:UserTopicFilter",
        "include_total_count=2:bool",
        "cursor=10:string",
        "limit=11:int32",
    ),
    "UserTopicListResponse": ("error=1:Error", "result=2:UserTopicListResult"),
    "UserTopicListResult": ("items=1:repeated UserTopic", "next_cursor=2:string", "total_count=3:int64"),
    "UserTopicUpdateRequest": ("user=1:string", "op=2:string", "topics=3:repeated string"),
    "UserTopicUpdateResponse": ("error=1:Error", "result=2:UserTopicUpdateResult"),
    "UserTopicUpdateResult": (),
    "WebPushPushNotification": ("headers=1:map<string,string>", "payload=2:bytes"),
}


SCALARS: Final = {
    number: name.removeprefix("TYPE_").lower()
    for name, number in FieldDescriptorProto.Type.items()
    if name not in ("TYPE_MESSAGE", "TYPE_GROUP", "TYPE_ENUM")
}


def facts(
    file: descriptor_pb2.FileDescriptorProto,
) -> tuple[str, str, tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(package, service, methods, messages) of a compiled .proto, written as the table is."""
    entries = {
        f".{file.package}.{message.name}.{nested.name}": nested
        for message in file.message_type
        for nested in message.nested_type
        if nested.options.map_entry
    }

    def kind(field: FieldDescriptorProto) -> str:
        if field.type != FieldDescriptorProto.TYPE_MESSAGE:
            return SCALARS[field.type]
        if field.type_name in entries:
            key, value = entries[field.type_name].field
            return f"map<{kind(key)},{kind(value)}>"
        return field.type_name.rsplit(".", 1)[-1]

    def written(field: FieldDescriptorProto) -> str:
        type_ = kind(field)
        repeated = field.label == FieldDescriptorProto.LABEL_REPEATED and not type_.startswith("map<")
        return f"{field.name}={field.number}:{'repeated ' if repeated else ''}{type_}"

    (service,) = file.service
    methods = tuple(
        f"{m.name}({m.input_type.rsplit('.', 1)[-1]}) {m.output_type.rsplit('.', 1)[-1]}"
        for m in service.method
    )
    messages = {m.name: tuple(written(f) for f in m.field) for m in file.message_type}
    return file.package, service.name, methods, messages


def check_against_the_table(file: descriptor_pb2.FileDescriptorProto) -> None:
    package, service, methods, messages = facts(file)
    assert (package, service) == (PACKAGE, SERVICE)
    assert methods == METHODS
    assert messages.keys() == MESSAGES.keys()
    for name, fields in MESSAGES.items():
        assert messages[name] == fields, name


def test_rotary_api_proto_matches_the_table() -> None:
    file = descriptor_pb2.FileDescriptorProto()
    api_pb2.DESCRIPTOR.CopyToProto(file)
    check_against_the_table(file)


def _centrifugo_proto_dir() -> Path:
    """Where the Go module cache keeps Centrifugo's apiproto package (downloaded by module name)."""
    reason = ""
    if shutil.which("go") is None:
        reason = "no go command on PATH to find Centrifugo's module"
    else:
        done = subprocess.run(
            ["go", "mod", "download", "-json", CENTRIFUGO_MODULE],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode == 0:
            return Path(json.loads(done.stdout)["Dir"]) / "internal" / "apiproto"
        reason = f"go mod download {CENTRIFUGO_MODULE} failed: {done.stderr.strip()[-500:]}"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def test_the_table_is_centrifugos(tmp_path: Path) -> None:
    """Centrifugo's api.proto compiled in a subprocess, read back as data: never loaded into this
    process's descriptor pool, where its names would collide with rotary's."""
    source = _centrifugo_proto_dir()
    out = tmp_path / "centrifugo.pb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{source}",
            f"--descriptor_set_out={out}",
            str(source / "api.proto"),
        ],
        check=True,
        capture_output=True,
    )
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (file,) = files.file
    check_against_the_table(file)
