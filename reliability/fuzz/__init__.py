"""Coverage-guided fuzzing (atheris) of every input rotary parses from the outside.

Each target in :mod:`reliability.fuzz.targets` takes bytes and feeds them to the real component,
then checks the contract: the input is accepted, or refused with a Centrifugo error or disconnect
code or an HTTP 4xx with a message; never an exception, a logged error, a 5xx, a leaked task or a
hang. A violated contract raises :class:`~reliability.fuzz.harness.ContractBroken`, which atheris
reports as a crash and the corpus replay in the suite reports as a failure.
"""
