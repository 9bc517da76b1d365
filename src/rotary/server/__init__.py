"""The Centrifugo-compatible application built on the rotary core: config, CLI, API, proxies, admin.

See https://centrifugal.dev/docs/getting-started/introduction
"""
