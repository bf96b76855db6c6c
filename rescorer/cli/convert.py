"""PLACEHOLDER: replaced by the module's owner."""


def convert_command() -> None:
    """Not implemented yet."""
    raise SystemExit("not implemented yet")
