"""The FastAPI chat example: app.py, served by ``python -m examples.chat``."""
