"""Hypothesis strategies for protocol messages, derived from the message descriptors.

Every field of every message gets a chance to be set, so a field added to client.proto is covered
without touching this file. ``bytes`` fields hold compact JSON (what a JSON connection can carry).
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from rotary.protocol import pb

M = TypeVar("M", bound=Message)

_INT_BOUNDS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
}

json_scalars = (
    st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
# A top-level null is how JSON says "unset", so a payload is never the bare literal null.
json_payloads = (json_scalars | json_values.filter(lambda v: v is not None)).map(orjson.dumps)
names = st.text(max_size=30)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in _INT_BOUNDS:
        low, high = _INT_BOUNDS[field.type]
        return st.integers(low, high)
    return {
        FieldDescriptor.TYPE_STRING: names,
        FieldDescriptor.TYPE_BOOL: st.booleans(),
        FieldDescriptor.TYPE_BYTES: json_payloads,
    }[field.type]


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and bool(field.message_type.GetOptions().map_entry)


_include = st.sampled_from([False, False, True])  # about a third of the fields, to keep examples small


@st.composite
def _filled(draw: st.DrawFn, descriptor: Descriptor, message: Message, depth: int) -> Message:
    for field in descriptor.fields:
        if not draw(_include):
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE and depth <= 0:
            continue  # bounds recursive types such as FilterNode
        _set(draw, message, field, depth)
    return message


def _set(draw: st.DrawFn, message: Message, field: FieldDescriptor, depth: int) -> None:
    target = getattr(message, field.name)
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        for key in draw(st.lists(names, max_size=3, unique=True)):
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                draw(_filled(value_field.message_type, target[key], depth - 1))
            else:
                target[key] = draw(_scalar(value_field))
    elif field.is_repeated:
        for _ in range(draw(st.integers(0, 3))):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                draw(_filled(field.message_type, target.add(), depth - 1))
            else:
                target.append(draw(_scalar(field)))
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        target.SetInParent()
        draw(_filled(field.message_type, target, depth - 1))
    else:
        setattr(message, field.name, draw(_scalar(field)))


def messages(message_type: type[M], depth: int = 3) -> st.SearchStrategy[M]:
    """Messages of ``message_type`` with any subset of fields set, nested at most ``depth`` deep."""
    return st.builds(message_type).flatmap(lambda m: _filled(message_type.DESCRIPTOR, m, depth))


commands = messages(pb.Command)
replies = messages(pb.Reply)
pushes = messages(pb.Push)
client_infos = messages(pb.ClientInfo)


@st.composite
def publications(draw: st.DrawFn) -> pb.Publication:
    """Publications as a broker delivers them: the hot-path fields likely, the rest sometimes."""
    pub = draw(messages(pb.Publication))
    if draw(st.booleans()):
        pub.data = draw(json_payloads)
    if draw(st.booleans()):
        pub.info.CopyFrom(draw(client_infos))
    pub.tags.update(draw(st.dictionaries(names, names, max_size=4)))
    pub.offset = draw(st.integers(0, 2**64 - 1))
    pub.time = draw(st.integers(0, 2**63 - 1))
    return pub


channels = st.text(max_size=40)
