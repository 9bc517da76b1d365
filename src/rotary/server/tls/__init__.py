"""TLS of the HTTP server (certificates from the config or from ACME) and of engine clients.

See https://centrifugal.dev/docs/server/tls
"""
