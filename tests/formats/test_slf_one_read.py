"""SLF files read once: the one-call gunzip and one-read detection equal the two-pass route."""
import gzip
import io
import zlib

import pytest

from rescorer.errors import InputFormatError
from rescorer.formats.detect import READ_ERRORS, SLF, detect_format
from rescorer.formats.kaldi_archive import starts_binary_archive
from rescorer.formats import slf
from rescorer.formats.slf import _gunzip, clean_slf_text, parse_slf_file, read_text
from rescorer.lattice.symbols import SymbolTable

TEXT = b"VERSION=1.0\nN=2 L=1\nI=0 t=0.0\nI=1 t=0.5\nJ=0 S=0 E=1 W=a a=-1.5 l=-2.0\n" * 40


def _module(data: bytes, size: int):
    """What the gzip module reads, or the type and text of what it raises."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
            return unzipped.read(size)
    except Exception as error:  # noqa: BLE001 - compared as a value
        return (type(error).__name__, str(error))


def _ours(data: bytes, size: int):
    try:
        return _gunzip(data, size)
    except Exception as error:  # noqa: BLE001
        return (type(error).__name__, str(error))


PACKED = gzip.compress(TEXT, mtime=0)
CRC = bytearray(PACKED)
CRC[-6] ^= 0xFF
LENGTH = bytearray(PACKED)
LENGTH[-2] ^= 0x01
MIDDLE = bytearray(PACKED)
MIDDLE[len(PACKED) // 2] ^= 0x55


@pytest.mark.parametrize("data", [
    PACKED, PACKED + PACKED, PACKED + b"\0\0\0\0", PACKED + b"junk", PACKED[:len(PACKED) // 2],
    PACKED[:-4], bytes(CRC), bytes(LENGTH), bytes(MIDDLE), PACKED[:10], b"\x1f\x8b",
    gzip.compress(b"", mtime=0),
], ids=["whole", "two members", "zero padding", "trailing junk", "half", "no length",
        "bad crc", "bad length", "flipped middle", "header only", "magic only", "empty"])
@pytest.mark.parametrize("size", [len(TEXT) + 1, len(TEXT), 100])
@pytest.mark.parametrize("inflate", ["isal", "zlib"])
def test_gunzip_equals_the_gzip_module(data, size, inflate, monkeypatch):
    if inflate == "isal":
        isal_zlib = pytest.importorskip("isal.isal_zlib")
        monkeypatch.setattr(slf, "_INFLATE", isal_zlib)
    else:  # the route without python-isal
        monkeypatch.setattr(slf, "_INFLATE", zlib)
    assert _ours(data, size) == _module(data, size)


def test_a_damaged_gzip_lattice_keeps_its_one_line(tmp_path):
    path = tmp_path / "u.slf.gz"
    path.write_bytes(bytes(CRC))
    with pytest.raises(InputFormatError) as caught:
        parse_slf_file(path, SymbolTable())
    assert str(caught.value).startswith(f"{path}: cannot read (BadGzipFile: CRC check failed")


def test_read_text_gunzips(tmp_path):
    path = tmp_path / "u.slf.gz"
    path.write_bytes(PACKED)
    assert read_text(path) == TEXT.decode()


KALDI_TEXT = b"utt1\n0 1 5 1.5,2.5,\n1\n\n"
FILES = {
    "plain.slf": TEXT, "gz.slf.gz": PACKED, "crlf.slf": TEXT.replace(b"\n", b"\r\n"),
    "comment.slf": b"# made by hand\n\n" + TEXT, "kaldi.txt": KALDI_TEXT,
    "kaldi.txt.gz": gzip.compress(KALDI_TEXT, mtime=0), "zip.pt": b"PK\x03\x04rest",
    "pickle.pt": b"\x80\x02rest", "empty.slf": b"", "comments.slf": b"# only\n#\n",
    "crc.slf.gz": bytes(CRC), "half.slf.gz": PACKED[:len(PACKED) // 2],
    "latin1.slf": TEXT + "W=caf\u00e9".encode("latin-1"), "eq.slf": b"=x y\n",
    "binary.ark": b"utt1 \0B" + bytes(range(40)), "two.slf.gz": PACKED + PACKED,
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_clean_slf_text_is_the_text_exactly_when_detection_and_reading_say_slf(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(FILES[name])
    try:
        expected = read_text(path) if detect_format(path) == SLF else None
    except (InputFormatError, *READ_ERRORS):
        expected = None
    text = clean_slf_text(path, starts_binary_archive)  # None: the two-pass route reads it
    assert text is None or text == expected
    assert (text is not None) == (name in {"plain.slf", "gz.slf.gz", "crlf.slf", "comment.slf"})
