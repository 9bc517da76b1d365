"""The implementation of rotary's public library API (``rotary``, ``rotary.testing``).

Import from ``rotary`` and ``rotary.testing`` only: the modules here, like every other module of
rotary, are private and change without notice.
"""
