"""Applications that embed rotary through its public API (``rotary``, ``rotary.mount``), each
started with one command: ``python -m examples.chat``, ``python -m examples.dashboard``."""
