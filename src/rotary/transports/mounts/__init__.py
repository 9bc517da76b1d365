"""Connection endpoints to mount inside a host application: an aiohttp sub-app and an ASGI app."""
