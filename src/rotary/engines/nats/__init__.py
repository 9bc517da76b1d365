"""The NATS broker and controller (PUB/SUB and control only, no history).
See https://centrifugal.dev/docs/server/engines#nats-broker
"""

from rotary.engines.nats.broker import NatsBroker
from rotary.engines.nats.connection import NatsBrokerSettings, NatsOptions, channel_subject
from rotary.engines.nats.controller import NatsController

__all__ = ["NatsBroker", "NatsBrokerSettings", "NatsController", "NatsOptions", "channel_subject"]
