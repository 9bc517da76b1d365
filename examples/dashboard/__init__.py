"""The aiohttp live dashboard example: app.py, served by ``python -m examples.dashboard``."""
