"""The one path type of the package's signatures."""
from pathlib import Path
from typing import Union

PathLike = Union[str, Path]
