"""Vectorised parsing of whitespace-separated text fields, shared by the SLF and Kaldi text readers.

Everything works on a whole byte buffer at once (``np.frombuffer``): token
boundaries are found with masks, and integers and decimals are parsed as array
arithmetic on a (W, T) matrix of the tokens' bytes (T tokens, W the longest):
Horner's rule one byte position at a time, each step a vector op over all T
tokens (W is a handful, so no loop runs per token).

Decimals: a token ``[+-]digits[.digits][(e|E)[+-]digits]`` with mantissa m (its
digits without the point, m < 2**53) and decimal exponent k (|k| <= 22) is
``m * 10**k`` or ``m / 10**-k``: both operands are exact doubles and one IEEE
operation rounds once, so the result is correctly rounded, i.e. bit-identical
to Python's ``float()``. Every other token (long mantissas, big exponents,
``inf``, ``nan``, ``1_0``, non-ASCII digits, garbage) goes to Python's
``float()``/``int()`` one by one: rare in real files, and exact by definition.
"""
from typing import Callable, Tuple

import numpy as np

_SPACE, _TAB, _NEWLINE = 32, 9, 10
_ZERO, _NINE, _DOT, _PLUS, _MINUS = 48, 57, 46, 43, 45
MAX_TOKEN_BYTES = 32  # longer tokens are parsed by Python one by one
_MAX_DIGITS = 18  # sums of up to 18 digits are exact in int64
_POW10_INT = 10 ** np.arange(_MAX_DIGITS + 1, dtype=np.int64)
_POW10_FLOAT = np.array([float(10 ** k) for k in range(23)])  # exact doubles 1e0 .. 1e22
_EXACT_MANTISSA = 2 ** 53


def has_control_bytes(chars: np.ndarray) -> bool:
    """True when the buffer has a byte below 32 other than tab and newline (NUL, CR, FF...).

    ``token_bounds`` needs a buffer without them; readers send such input to
    their line parsers, whose white space rules differ.

    Args:
      chars: 1-D uint8 array of shape (C,), the buffer.
    """
    return np.count_nonzero(chars < _SPACE) != (np.count_nonzero(chars == _TAB)
                                                + np.count_nonzero(chars == _NEWLINE))


def token_bounds(chars: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the tokens of a buffer (runs without space, tab, newline).

    Args:
      chars: 1-D uint8 array of shape (C,), the buffer, without control bytes
        other than tab and newline (see ``has_control_bytes``).

    Returns:
      ``(starts, ends)``: 1-D int64 arrays of shape (T,), token ``t`` is
      ``chars[starts[t]:ends[t]]``.
    """
    is_token = np.zeros(chars.size + 2, dtype=bool)
    np.greater(chars, _SPACE, out=is_token[1:-1])
    spaces = np.flatnonzero(~is_token[1:-1])  # (P,)
    if is_token[1] and is_token[-2] and not bool((spaces[1:] == spaces[:-1] + 1).any()):
        # One separator between tokens (machine-written text): half the work.
        return np.concatenate([[0], spaces + 1]), np.append(spaces, chars.size)
    edges = np.flatnonzero(np.diff(is_token.view(np.int8)))  # (2T,): starts and ends alternate
    return edges[0::2], edges[1::2]


def token_matrix(chars: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """2-D uint8 array of shape (width, T): column t holds token t's first ``width`` bytes.

    Bytes past a token's end are whatever follows it in the buffer (callers mask
    them with the token lengths); past the buffer's end they are 0.
    """
    padded = np.concatenate([chars, np.zeros(width, dtype=np.uint8)])
    index = starts[None, :] + np.arange(width, dtype=np.int64)[:, None]  # (W, T)
    return padded[index]


def parse_ints(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               python_fallback: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """The tokens as Python's ``int()`` reads them.

    Args:
      chars: 1-D uint8 array, the buffer.
      starts: 1-D int64 array of shape (T,), token starts.
      ends: 1-D int64 array of shape (T,), token ends.
      python_fallback: parse tokens other than plain digit strings with ``int()``;
        False: they are not ok.

    Returns:
      ``(values, ok)``: 1-D int64 array of shape (T,) and 1-D bool array of shape
      (T,), False where ``int()`` fails or the value does not fit int64 (value 0 there).
    """
    lengths = ends - starts
    width = int(min(lengths.max(initial=1), _MAX_DIGITS))
    fast = (lengths >= 1) & (lengths <= _MAX_DIGITS)
    digits = token_matrix(chars, starts, width)  # (W, T)
    digits[np.arange(width)[:, None] >= lengths[None, :]] = _ZERO  # pad with '0' digits
    digits -= np.uint8(_ZERO)  # wraps below '0'
    fast &= (digits <= 9).all(axis=0)
    values = np.zeros(starts.size, dtype=np.int64)
    for column in range(width):  # Horner's rule, one vector step per byte position
        values *= 10
        values += digits[column]
    values //= _POW10_INT[np.clip(width - lengths, 0, _MAX_DIGITS)]  # drop the padding digits
    values[~fast] = 0
    ok = fast.copy()
    if python_fallback:
        _python_fallback(chars, starts, ends, ~fast, values, ok, _python_int)
    return values, ok


def parse_floats(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 python_fallback: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """The tokens as Python's ``float()`` reads them, bit for bit.

    Three stages, each on what the one before left: plain decimals
    ``[+-]digits[.digits]`` (one cheap pass over all tokens), decimals with an
    exponent (``_parse_scientific``), then Python's ``float()``.

    Args:
      chars: 1-D uint8 array, the buffer.
      starts: 1-D int64 array of shape (T,), token starts.
      ends: 1-D int64 array of shape (T,), token ends.
      python_fallback: parse tokens outside the exact decimal forms with
        ``float()``; False: they are not ok.

    Returns:
      ``(values, ok)``: 1-D float64 array of shape (T,) and 1-D bool array of
      shape (T,), False where ``float()`` fails (value 0.0 there).
    """
    lengths = ends - starts
    width = int(min(lengths.max(initial=1), MAX_TOKEN_BYTES))
    matrix = token_matrix(chars, starts, width)  # (W, T)
    past_end = np.arange(width)[:, None] >= lengths[None, :]
    fast = (lengths >= 1) & (lengths <= MAX_TOKEN_BYTES)
    if chars.size and int(chars.min()) == 0:  # NUL inside a token: float() refuses it
        fast &= ~((matrix == 0) & ~past_end).any(axis=0)
    matrix[past_end] = 0  # 0 marks a token's end from here on
    digits = matrix - np.uint8(_ZERO)  # (W, T), wraps below '0'
    is_digit = digits <= 9
    is_dot = matrix == _DOT
    allowed = is_digit | is_dot | (matrix == 0)
    allowed[0] |= (matrix[0] == _PLUS) | (matrix[0] == _MINUS)
    num_digits = np.count_nonzero(is_digit, axis=0)
    num_dots = np.count_nonzero(is_dot, axis=0)
    mantissa = np.zeros(starts.size, dtype=np.int64)  # m: the digits without the point
    after_dot = np.zeros(starts.size, dtype=bool)
    fraction_digits = np.zeros(starts.size, dtype=np.int64)
    for column in range(width):  # Horner's rule, one vector step per byte position
        digit = is_digit[column]
        np.multiply(mantissa, 10, out=mantissa, where=digit)
        np.add(mantissa, digits[column], out=mantissa, where=digit, casting="unsafe")
        after_dot |= is_dot[column]
        fraction_digits += digit & after_dot
    fast_shape = fast.copy()  # length and NUL checks, for the later stages
    fast &= (allowed.all(axis=0) & (num_digits >= 1) & (num_digits <= _MAX_DIGITS)
             & (num_dots <= 1) & (mantissa < _EXACT_MANTISSA))
    values = mantissa / _POW10_FLOAT[np.minimum(fraction_digits, 22)]
    values = np.where(matrix[0] == _MINUS, -values, values)
    values[~fast] = 0.0
    ok = fast.copy()
    rest = np.flatnonzero(~fast)
    if rest.size:
        more, more_ok = _parse_scientific(matrix[:, rest], lengths[rest])
        more_ok &= fast_shape[rest]
        values[rest[more_ok]] = more[more_ok]
        ok[rest[more_ok]] = True
        if python_fallback:
            _python_fallback(chars, starts, ends, ~ok, values, ok, float)
    return values, ok


def _parse_scientific(matrix: np.ndarray, lengths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Decimals with an optional exponent, ``[+-]digits[.digits][(e|E)[+-]digits]``.

    Args:
      matrix: 2-D uint8 array of shape (W, T), the tokens' bytes, 0 past their ends.
      lengths: 1-D int64 array of shape (T,), the tokens' lengths.

    Returns:
      ``(values, ok)`` as ``parse_floats``; ok is False also for valid tokens
      outside the exact range (left to Python).
    """
    count = lengths.size
    mantissa = np.zeros(count, dtype=np.int64)
    exponent = np.zeros(count, dtype=np.int64)  # the digits after e/E
    num_digits = np.zeros(count, dtype=np.int64)
    num_exponent_digits = np.zeros(count, dtype=np.int64)
    fraction_digits = np.zeros(count, dtype=np.int64)
    seen_dot = np.zeros(count, dtype=bool)
    seen_e = np.zeros(count, dtype=bool)
    negative_exponent = np.zeros(count, dtype=bool)
    fast = (lengths >= 1) & (lengths <= MAX_TOKEN_BYTES)
    for column in range(matrix.shape[0]):  # a small state machine, one step per byte position
        byte = matrix[column]
        digit = byte - np.uint8(_ZERO)
        is_digit = digit <= 9
        in_mantissa = is_digit & ~seen_e
        in_exponent = is_digit & seen_e
        mantissa = np.where(in_mantissa, mantissa * 10 + digit, mantissa)
        exponent = np.where(in_exponent, exponent * 10 + digit, exponent)
        num_digits += in_mantissa
        num_exponent_digits += in_exponent
        fraction_digits += in_mantissa & seen_dot
        is_dot = (byte == _DOT) & ~seen_dot & ~seen_e
        is_e = ((byte | 32) == ord("e")) & ~seen_e & (num_digits > 0)
        is_sign = (byte == _PLUS) | (byte == _MINUS)
        # A sign may open the token or follow the e directly.
        sign_ok = is_sign & ((column == 0) | (seen_e & (num_exponent_digits == 0)
                                              & (matrix[column - 1] | 32 == ord("e"))))
        negative_exponent |= sign_ok & seen_e & (byte == _MINUS)
        fast &= is_digit | is_dot | is_e | sign_ok | (byte == 0)
        seen_dot |= is_dot
        seen_e |= is_e
    scale = np.where(negative_exponent, -exponent, exponent) - fraction_digits  # k
    fast &= ((num_digits >= 1) & (num_digits <= _MAX_DIGITS) & (mantissa < _EXACT_MANTISSA)
             & (~seen_e | ((num_exponent_digits >= 1) & (num_exponent_digits <= 4)))
             & (np.abs(scale) <= 22))
    factor = _POW10_FLOAT[np.clip(np.abs(scale), 0, 22)]
    values = np.where(scale >= 0, mantissa * factor, mantissa / factor)
    return np.where(matrix[0] == _MINUS, -values, values), fast


def _python_int(text: str) -> int:
    """``int(text)``, refusing values outside int64."""
    value = int(text)
    if not -2**63 <= value < 2**63:
        raise ValueError(f"{text[:30]!r} does not fit int64")
    return value


def _python_fallback(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
                     values: np.ndarray, ok: np.ndarray, convert: Callable) -> None:
    """Parse the ``rows`` tokens with ``convert`` (Python), in place; ``ok`` False on failure."""
    data = chars.tobytes() if rows.any() else b""
    for row in np.flatnonzero(rows).tolist():
        try:
            values[row] = convert(data[starts[row]:ends[row]].decode("utf-8"))
            ok[row] = True
        except (ValueError, UnicodeDecodeError):
            values[row] = 0
            ok[row] = False
