"""PLACEHOLDER: replaced by the module's owner."""


def rescore_command() -> None:
    """Not implemented yet."""
    raise SystemExit("not implemented yet")
