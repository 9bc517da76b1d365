"""A Django project that serves rotary's connections beside its own views."""
