"""``python -m rescorer`` (used by torchrun) runs the ``fprescore`` CLI."""
from rescorer.cli.app import main

if __name__ == "__main__":
    main()
