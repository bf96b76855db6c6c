"""PLACEHOLDER: replaced by the module's owner."""


def eval_command() -> None:
    """Not implemented yet."""
    raise SystemExit("not implemented yet")
