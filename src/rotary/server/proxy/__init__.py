"""Proxies: rotary asks the application backend about connects, subscriptions, publications, RPC.

Over HTTP a request is a JSON POST to the endpoint; over GRPC a call of the ``CentrifugoProxy``
service (``proto/rotary/proxy.proto``, wire-compatible with Centrifugo's). ``calls`` holds the
two transports behind one ``Backend`` interface, ``codec`` the JSON form of the messages,
``registry`` the proxies a config names, ``outcome`` how an answer or a failure becomes a
decision or a client error. See https://centrifugal.dev/docs/server/proxy
"""
