"""PLACEHOLDER: replaced by the module's owner."""
import typer

app = typer.Typer(help="Download corpora.")


@app.command("download")
def download_command() -> None:
    """Not implemented yet."""
    raise SystemExit("not implemented yet")
