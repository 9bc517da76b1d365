"""Every fuzz target by name: the in-process ones of the long run and the socket-level ones."""

from __future__ import annotations

from reliability.fuzz.endpoints import Emulation, GrpcApiBodies, HttpApi, StreamConnect
from reliability.fuzz.targets import (
    ClientJson,
    ClientProtobuf,
    ConfigEnv,
    ConfigFile,
    EmulationSocket,
    HttpApiSocket,
    Jwt,
    StreamConnectSocket,
    TagsFilter,
    Target,
    UniConnectRequest,
)

TARGETS: dict[str, type[Target]] = {
    cls.name: cls
    for cls in (
        ClientJson,
        ClientProtobuf,
        HttpApi,
        HttpApiSocket,
        GrpcApiBodies,
        Emulation,
        EmulationSocket,
        StreamConnect,
        StreamConnectSocket,
        UniConnectRequest,
        Jwt,
        TagsFilter,
        ConfigFile,
        ConfigEnv,
    )
}
