"""JSON parsing and printing with the observable behaviour of RapidJSON 1.1.0, TF Serving's parser.

TF Serving parses request bodies with RapidJSON (`kParseIterativeFlag | kParseNanAndInfFlag |
kParseStopWhenDoneFlag`) and quotes request values in its error messages with RapidJSON's
`PrettyWriter` (`util/json_tensor.cc`). Python's `json` module accepts and rejects slightly
different documents and reports errors differently, so:

- `parse` first tries Python's C parser, which agrees with RapidJSON on ordinary documents, and
  falls back to `_Reader`, a transcription of RapidJSON's iterative parser, for anything else:
  syntax errors (to report RapidJSON's message and byte offset), trailing data after the root
  (ignored by `kParseStopWhenDoneFlag`), `Inf`/`-NaN` tokens, exponents that overflow a double.
- `PrettyWriter` reproduces RapidJSON's pretty printing (4-space indent, optional single-line
  arrays, shortest round-trip doubles formatted like RapidJSON's `dtoa`), with the byte limit of
  TF Serving's `JsonWriterWithLimit`.

Values are plain Python objects: dict (first of duplicate keys wins, like RapidJSON's
`FindMember`), list, str (raw bytes kept with `surrogateescape`), int, float, bool, None. RapidJSON
stores integers beyond the uint64 range as doubles; callers treat such ints as doubles.
"""

from __future__ import annotations

import json
import math
import re

# RapidJSON's ParseErrorCode messages (error/en.h).
DOCUMENT_EMPTY = "The document is empty."
ROOT_NOT_SINGULAR = "The document root must not be followed by other values."
VALUE_INVALID = "Invalid value."
OBJECT_MISS_NAME = "Missing a name for object member."
OBJECT_MISS_COLON = "Missing a colon after a name of object member."
OBJECT_MISS_COMMA_OR_CURLY = "Missing a comma or '}' after an object member."
ARRAY_MISS_COMMA_OR_SQUARE = "Missing a comma or ']' after an array element."
STRING_UNICODE_ESCAPE_INVALID_HEX = "Incorrect hex digit after \\u escape in string."
STRING_UNICODE_SURROGATE_INVALID = "The surrogate pair in string is invalid."
STRING_ESCAPE_INVALID = "Invalid escape character in string."
STRING_MISS_QUOTATION_MARK = "Missing a closing quotation mark in string."
NUMBER_TOO_BIG = "Number too big to be stored in double."
NUMBER_MISS_FRACTION = "Miss fraction part in number."
NUMBER_MISS_EXPONENT = "Miss exponent in number."

INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1

# Documents Python's parser would read differently from RapidJSON: a 3+ digit exponent (may
# overflow), `Inf`/`-Inf`/`-NaN`, an escaped high surrogate (RapidJSON requires its pair); and
# integers of 309+ digits (`_parse_int`). Cheap substring tests guard the rarer patterns.
_EXPONENT = re.compile(rb"[eE][+-]?\d{3}")
_INF = re.compile(rb"Inf(?!inity)")
_HIGH_SURROGATE = re.compile(rb"\\u[dD][89abAB]")


def _needs_rapidjson(data: bytes) -> bool:
    return bool(b"-NaN" in data or (b"Inf" in data and _INF.search(data))
                or (b"\\u" in data and _HIGH_SURROGATE.search(data))
                or _EXPONENT.search(data))


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 308:  # RapidJSON: a double, or "Number too big"
        raise ValueError(text)
    return int(text)


class ParseError(Exception):
    """A syntax error: RapidJSON's message and the byte offset where it stopped."""

    def __init__(self, message: str, offset: int):
        super().__init__(f"{message} at offset: {offset}")
        self.message = message
        self.offset = offset


def _first_wins(pairs):
    obj = {}
    for key, value in pairs:
        obj.setdefault(key, value)
    return obj


def parse(data: bytes):
    """Parses a non-empty document as TF Serving's RapidJSON call does; raises `ParseError`."""
    if not _needs_rapidjson(data):
        try:
            text = data.decode("utf-8")
            if not text.startswith("\ufeff"):
                return json.loads(text, object_pairs_hook=_first_wins, parse_int=_parse_int)
        except (ValueError, RecursionError):
            pass
    return _Reader(data).parse()


# --------------------------------------------------------------------------------------------
# The fallback: RapidJSON 1.1.0's GenericReader::IterativeParse, state by state.

(_START, _FINISH, _ERROR, _OBJECT_INITIAL, _MEMBER_KEY, _KEY_VALUE_DELIMITER, _MEMBER_VALUE,
 _MEMBER_DELIMITER, _OBJECT_FINISH, _ARRAY_INITIAL, _ELEMENT, _ELEMENT_DELIMITER, _ARRAY_FINISH,
 _VALUE) = range(14)
(_LBRACKET, _RBRACKET, _LCURLY, _RCURLY, _COMMA, _COLON, _STRING, _FALSE, _TRUE, _NULL,
 _NUMBER) = range(11)

_TOKENS = {ord("["): _LBRACKET, ord("]"): _RBRACKET, ord("{"): _LCURLY, ord("}"): _RCURLY,
           ord(","): _COMMA, ord(":"): _COLON, ord('"'): _STRING, ord("f"): _FALSE,
           ord("t"): _TRUE, ord("n"): _NULL}

_E = _ERROR
# RapidJSON's state transition table G[state][token].
_G = {
    _START: (_ARRAY_INITIAL, _E, _OBJECT_INITIAL, _E, _E, _E, _VALUE, _VALUE, _VALUE, _VALUE,
             _VALUE),
    _OBJECT_INITIAL: (_E, _E, _E, _OBJECT_FINISH, _E, _E, _MEMBER_KEY, _E, _E, _E, _E),
    _MEMBER_KEY: (_E, _E, _E, _E, _E, _KEY_VALUE_DELIMITER, _E, _E, _E, _E, _E),
    _KEY_VALUE_DELIMITER: (_ARRAY_INITIAL, _E, _OBJECT_INITIAL, _E, _E, _E, _MEMBER_VALUE,
                           _MEMBER_VALUE, _MEMBER_VALUE, _MEMBER_VALUE, _MEMBER_VALUE),
    _MEMBER_VALUE: (_E, _E, _E, _OBJECT_FINISH, _MEMBER_DELIMITER, _E, _E, _E, _E, _E, _E),
    _MEMBER_DELIMITER: (_E, _E, _E, _OBJECT_FINISH, _E, _E, _MEMBER_KEY, _E, _E, _E, _E),
    _ARRAY_INITIAL: (_ARRAY_INITIAL, _ARRAY_FINISH, _OBJECT_INITIAL, _E, _E, _E, _ELEMENT,
                     _ELEMENT, _ELEMENT, _ELEMENT, _ELEMENT),
    _ELEMENT: (_E, _ARRAY_FINISH, _E, _E, _ELEMENT_DELIMITER, _E, _E, _E, _E, _E, _E),
    _ELEMENT_DELIMITER: (_ARRAY_INITIAL, _ARRAY_FINISH, _OBJECT_INITIAL, _E, _E, _E, _ELEMENT,
                         _ELEMENT, _ELEMENT, _ELEMENT, _ELEMENT),
}
_ESCAPES = {ord('"'): '"', ord("\\"): "\\", ord("/"): "/", ord("b"): "\b", ord("f"): "\f",
            ord("n"): "\n", ord("r"): "\r", ord("t"): "\t"}
_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}
_POW10 = [float(f"1e{i}") for i in range(309)]
_D0, _D9 = ord("0"), ord("9")


def _strtod_normal_precision(d: float, p: int) -> float:
    def fast_path(significand, exp):
        if exp < -308:
            return 0.0
        if exp >= 0:
            return significand * _POW10[exp]
        return significand / _POW10[-exp]

    if p < -308:
        return fast_path(fast_path(d, -308), p + 308)
    return fast_path(d, p)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # UTF8::TakeBOM
        self.error: ParseError | None = None

    # -- stream ------------------------------------------------------------------------------
    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else 0

    def take(self) -> int:
        c = self.peek()
        self.pos += 1
        return c

    def consume(self, char: str) -> bool:
        if self.peek() == ord(char):
            self.pos += 1
            return True
        return False

    def fail(self, message: str, offset: int):
        if self.error is None:
            self.error = ParseError(message, offset)
        raise self.error

    def skip_whitespace(self):
        data, n = self.data, len(self.data)
        while self.pos < n and data[self.pos] in b" \n\r\t":
            self.pos += 1

    def isdigit(self) -> bool:
        return _D0 <= self.peek() <= _D9

    # -- the iterative parser ----------------------------------------------------------------
    def parse(self):
        try:
            return self._parse()
        except ParseError:
            raise self.error from None

    def _parse(self):
        state = _START
        stack: list[list] = []  # [return state, container, pending key]
        root = None
        self.skip_whitespace()
        while self.peek() != 0:
            token = _TOKENS.get(self.peek(), _NUMBER)
            dst = _G.get(state, (_ERROR,) * 11)[token]
            new_state = self._transit(state, dst, stack)
            if new_state == _ERROR:
                self._handle_error(state)
            if new_state is _ROOT_DONE:
                root, new_state = self._root, _FINISH
            state = new_state
            if state == _FINISH:  # kParseStopWhenDoneFlag
                break
            self.skip_whitespace()
        if state != _FINISH:
            self._handle_error(state)
        return root

    def _attach(self, stack, value):
        if not stack:
            self._root = value
            return
        container, key = stack[-1][1], stack[-1][2]
        if isinstance(container, list):
            container.append(value)
        else:
            container.setdefault(key, value)

    def _transit(self, src, dst, stack):
        if dst == _ERROR:
            return _ERROR
        if dst in (_OBJECT_INITIAL, _ARRAY_INITIAL):
            n = src
            if src in (_ARRAY_INITIAL, _ELEMENT_DELIMITER):
                n = _ELEMENT
            elif src == _KEY_VALUE_DELIMITER:
                n = _MEMBER_VALUE
            container = {} if dst == _OBJECT_INITIAL else []
            self._attach(stack, container)
            stack.append([n, container, None])
            self.take()
            return dst
        if dst == _MEMBER_KEY:
            stack[-1][2] = self._parse_string()
            return dst
        if dst in (_KEY_VALUE_DELIMITER, _MEMBER_DELIMITER, _ELEMENT_DELIMITER):
            self.take()
            return dst
        if dst in (_MEMBER_VALUE, _ELEMENT):
            self._attach(stack, self._parse_value())
            return dst
        if dst == _OBJECT_FINISH:
            if src == _MEMBER_DELIMITER:
                self.fail(OBJECT_MISS_NAME, self.pos)
            return self._finish_container(stack)
        if dst == _ARRAY_FINISH:
            if src == _ELEMENT_DELIMITER:
                self.fail(VALUE_INVALID, self.pos)
            return self._finish_container(stack)
        # _VALUE: a scalar root.
        self._root = self._parse_value()
        return _ROOT_DONE

    def _finish_container(self, stack):
        n = stack.pop()[0]
        self.take()
        if n == _START:
            return _ROOT_DONE
        return n

    def _handle_error(self, src):
        messages = {
            _START: DOCUMENT_EMPTY, _FINISH: ROOT_NOT_SINGULAR,
            _OBJECT_INITIAL: OBJECT_MISS_NAME, _MEMBER_DELIMITER: OBJECT_MISS_NAME,
            _MEMBER_KEY: OBJECT_MISS_COLON, _MEMBER_VALUE: OBJECT_MISS_COMMA_OR_CURLY,
            _KEY_VALUE_DELIMITER: VALUE_INVALID, _ARRAY_INITIAL: VALUE_INVALID,
            _ELEMENT_DELIMITER: VALUE_INVALID,
        }
        self.fail(messages.get(src, ARRAY_MISS_COMMA_OR_SQUARE), self.pos)

    # -- values ------------------------------------------------------------------------------
    def _parse_value(self):
        c = self.peek()
        if c == ord('"'):
            return self._parse_string()
        for char, word, value in (("n", "ull", None), ("t", "rue", True), ("f", "alse", False)):
            if c == ord(char):
                self.take()
                if all(self.consume(w) for w in word):
                    return value
                self.fail(VALUE_INVALID, self.pos)
        return self._parse_number()

    def _hex4(self, escape_offset: int) -> int:
        codepoint = 0
        for _ in range(4):
            digit = _HEX.get(self.peek())
            if digit is None:
                self.fail(STRING_UNICODE_ESCAPE_INVALID_HEX, escape_offset)
            codepoint = codepoint * 16 + digit
            self.take()
        return codepoint

    def _parse_string(self) -> str:
        self.take()  # the opening quote
        out = bytearray()
        while True:
            c = self.peek()
            if c == ord("\\"):
                escape_offset = self.pos
                self.take()
                e = self.peek()
                if e in _ESCAPES:
                    self.take()
                    out += _ESCAPES[e].encode()
                elif e == ord("u"):
                    self.take()
                    codepoint = self._hex4(escape_offset)
                    if 0xD800 <= codepoint <= 0xDBFF:
                        if not (self.consume("\\") and self.consume("u")):
                            self.fail(STRING_UNICODE_SURROGATE_INVALID, escape_offset)
                        low = self._hex4(escape_offset)
                        if not 0xDC00 <= low <= 0xDFFF:
                            self.fail(STRING_UNICODE_SURROGATE_INVALID, escape_offset)
                        codepoint = (((codepoint - 0xD800) << 10) | (low - 0xDC00)) + 0x10000
                    out += chr(codepoint).encode("utf-8", "surrogatepass")
                else:
                    self.fail(STRING_ESCAPE_INVALID, escape_offset)
            elif c == ord('"'):
                self.take()
                return out.decode("utf-8", "surrogateescape")
            elif c < 0x20:
                self.fail(STRING_MISS_QUOTATION_MARK if c == 0 else STRING_ESCAPE_INVALID,
                          self.pos)
            else:
                out.append(self.take())

    def _digit(self) -> int:
        return self.take() - _D0

    def _parse_number(self):  # noqa: C901  (a transcription of Reader::ParseNumber)
        start = self.pos
        d = 0.0
        use_nan_or_inf = False
        minus = self.consume("-")
        i = i64 = 0
        use_64bit = False
        significand_digits = 0
        c = self.peek()
        if c == _D0:
            self.take()
        elif _D0 + 1 <= c <= _D9:
            i = self._digit()
            limit, last = (214748364, ord("8")) if minus else (429496729, ord("5"))
            while self.isdigit():
                if i >= limit and (i != limit or self.peek() > last):
                    i64, use_64bit = i, True
                    break
                i = i * 10 + self._digit()
                significand_digits += 1
        elif c in (ord("I"), ord("N")):
            use_nan_or_inf = True
            if self.consume("N") and self.consume("a") and self.consume("N"):
                d = math.nan
            elif self.consume("I") and self.consume("n") and self.consume("f"):
                d = -math.inf if minus else math.inf
                if self.peek() == ord("i") and not all(self.consume(w) for w in "inity"):
                    self.fail(VALUE_INVALID, self.pos)
            else:
                self.fail(VALUE_INVALID, self.pos)
        else:
            self.fail(VALUE_INVALID, self.pos)

        use_double = False
        if use_64bit:
            limit, last = ((0x0CCCCCCCCCCCCCCC, ord("8")) if minus
                           else (0x1999999999999999, ord("5")))
            while self.isdigit():
                if i64 >= limit and (i64 != limit or self.peek() > last):
                    d, use_double = float(i64), True
                    break
                i64 = i64 * 10 + self._digit()
                significand_digits += 1
        if use_double:
            while self.isdigit():
                if d >= 1.7976931348623157e307:
                    self.fail(NUMBER_TOO_BIG, start)
                d = d * 10 + self._digit()

        exp_frac = 0
        if self.consume("."):
            if not self.isdigit():
                self.fail(NUMBER_MISS_FRACTION, self.pos)
            if not use_double:
                if not use_64bit:
                    i64 = i
                while self.isdigit():
                    if i64 > 0x1FFFFFFFFFFFFF:
                        break
                    i64 = i64 * 10 + self._digit()
                    exp_frac -= 1
                    if i64 != 0:
                        significand_digits += 1
                d, use_double = float(i64), True
            while self.isdigit():
                if significand_digits < 17:
                    d = d * 10.0 + self._digit()
                    exp_frac -= 1
                    if d > 0.0:
                        significand_digits += 1
                else:
                    self.take()

        exp = 0
        if self.consume("e") or self.consume("E"):
            if not use_double:
                d, use_double = float(i64 if use_64bit else i), True
            exp_minus = False
            if not self.consume("+"):
                exp_minus = self.consume("-")
            if not self.isdigit():
                self.fail(NUMBER_MISS_EXPONENT, self.pos)
            exp = self._digit()
            if exp_minus:
                while self.isdigit():
                    exp = exp * 10 + self._digit()
                    if exp >= 214748364:
                        while self.isdigit():
                            self.take()
                exp = -exp
            else:
                max_exp = 308 - exp_frac
                while self.isdigit():
                    exp = exp * 10 + self._digit()
                    if exp > max_exp:
                        self.fail(NUMBER_TOO_BIG, start)

        if use_double:
            d = _strtod_normal_precision(d, exp + exp_frac)
            return -d if minus else d
        if use_nan_or_inf:
            return d
        if use_64bit:
            return -i64 if minus else i64
        return -i if minus else i


_ROOT_DONE = object()


# --------------------------------------------------------------------------------------------
# Printing.

def format_double(value: float) -> str | None:
    """RapidJSON's `Writer::Double` text (`internal::dtoa`); None for NaN/Inf, which it refuses."""
    if math.isnan(value) or math.isinf(value):
        return None
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    k = (int(exponent) if exponent else 0) - len(fraction)
    stripped = digits.rstrip("0")
    k += len(digits) - len(stripped)
    return sign + _prettify(stripped, k)


def _prettify(digits: str, k: int) -> str:
    length = len(digits)
    kk = length + k  # 10^(kk-1) <= v < 10^kk
    if 0 <= k and kk <= 21:
        return digits + "0" * k + ".0"
    if 0 < kk <= 21:
        return digits[:kk] + "." + digits[kk:]
    if -6 < kk <= 0:
        return "0." + "0" * -kk + digits
    exponent = kk - 1
    text = digits if length == 1 else digits[0] + "." + digits[1:]
    return f"{text}e{exponent}"


_STRING_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                   "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def quote(text: str) -> str:
    """A JSON string as RapidJSON's `Writer::String` writes it (no escaping of '/' or non-ASCII)."""
    def escape(match):
        c = match.group()
        return _STRING_ESCAPES.get(c) or f"\\u{ord(c):04X}"

    return '"' + _NEEDS_ESCAPE.sub(escape, text) + '"'


def is_rapidjson_double(value) -> bool:
    """Whether RapidJSON holds a parsed number as a double (ints beyond [int64, uint64] are)."""
    return type(value) is float or (type(value) is int and not INT64_MIN <= value <= UINT64_MAX)


class _LimitReached(Exception):
    pass


class PrettyWriter:
    """RapidJSON's `PrettyWriter` (4-space indent), with `kFormatSingleLineArray` switchable.

    With `limit`, behaves like TF Serving's `JsonWriterWithLimit`: an event is written only while
    the output is shorter than `limit` bytes; the first refused event ends the output.
    """

    def __init__(self, single_line_arrays: bool = False, limit: int | None = None):
        self.parts: list[str] = []
        self.levels: list[list] = []  # [in_array, value_count]
        self.single_line_arrays = single_line_arrays
        self.limit = limit
        self.size = 0

    def text(self) -> str:
        return "".join(self.parts)

    def _put(self, s: str):
        self.parts.append(s)
        if self.limit is not None:
            self.size += len(s.encode("utf-8", "surrogateescape"))

    def _event(self):
        if self.limit is not None and self.size >= self.limit:
            raise _LimitReached

    def _indent(self):
        return " " * (4 * len(self.levels))

    def _prefix(self):
        if not self.levels:
            return
        level = self.levels[-1]
        if level[0]:
            if level[1] > 0:
                self._put(", " if self.single_line_arrays else ",")
            if not self.single_line_arrays:
                self._put("\n" + self._indent())
        else:
            if level[1] > 0:
                self._put(",\n" if level[1] % 2 == 0 else ": ")
            else:
                self._put("\n")
            if level[1] % 2 == 0:
                self._put(self._indent())
        level[1] += 1

    def raw(self, text: str):
        self._event()
        self._prefix()
        self._put(text)

    def string(self, text: str):
        self.raw(quote(text))

    key = string

    def start_object(self):
        self._event()
        self._prefix()
        self.levels.append([False, 0])
        self._put("{")

    def end_object(self):
        self._event()
        empty = self.levels.pop()[1] == 0
        if not empty:
            self._put("\n" + self._indent())
        self._put("}")

    def start_array(self):
        self._event()
        self._prefix()
        self.levels.append([True, 0])
        self._put("[")

    def end_array(self):
        self._event()
        empty = self.levels.pop()[1] == 0
        if not empty and not self.single_line_arrays:
            self._put("\n" + self._indent())
        self._put("]")

    def value(self, value) -> bool:
        """Writes a parsed value like `Value::Accept`; False where RapidJSON stops (NaN, Inf)."""
        if isinstance(value, dict):
            self.start_object()
            for k, v in value.items():
                self.key(k)
                if not self.value(v):
                    return False
            self.end_object()
        elif isinstance(value, list):
            self.start_array()
            for v in value:
                if not self.value(v):
                    return False
            self.end_array()
        elif isinstance(value, str):
            self.string(value)
        elif value is None:
            self.raw("null")
        elif value is True or value is False:
            self.raw("true" if value else "false")
        elif is_rapidjson_double(value):
            text = format_double(float(value))
            if text is None:
                self._event()
                self._prefix()  # Writer::Double refuses after PrettyPrefix has run
                return False
            self.raw(text)
        else:
            self.raw(str(value))
        return True


DEBUG_STRING_LIMIT = 256


def debug_string(value) -> str:
    """TF Serving's `JsonValueToDebugString`: single-line arrays, cut after 256 bytes."""
    writer = PrettyWriter(single_line_arrays=True, limit=DEBUG_STRING_LIMIT)
    try:
        writer.value(value)
    except (_LimitReached, RecursionError):
        pass
    return writer.text()


def type_name(value) -> str:
    """TF Serving's `JsonTypeString`."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"
