"""PLACEHOLDER: replaced by the module's owner."""


def train_command() -> None:
    """Not implemented yet."""
    raise SystemExit("not implemented yet")
