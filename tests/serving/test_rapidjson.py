"""RapidJSON-compatible parsing and printing (TF Serving's JSON library)."""

import math

import pytest

from serving import _rapidjson as rj

# (body, RapidJSON 1.1.0's error message, byte offset), derived from its iterative parser.
PARSE_ERRORS = [
    (b"instances = [1, 2]", rj.VALUE_INVALID, 0),
    (b'{"instances": [1, 2]', rj.OBJECT_MISS_COMMA_OR_CURLY, 20),
    (b'{"a" 1}', rj.OBJECT_MISS_COLON, 5),
    (b"[1,]", rj.VALUE_INVALID, 3),
    (b'{"a":1,}', rj.OBJECT_MISS_NAME, 7),
    (b'{"a": [1 2]}', rj.ARRAY_MISS_COMMA_OR_SQUARE, 9),
    (b"{1: 2}", rj.OBJECT_MISS_NAME, 1),
    (b"   ", rj.DOCUMENT_EMPTY, 3),
    (b'{"a": 1e400}', rj.NUMBER_TOO_BIG, 6),
    (b'{"a": 1.}', rj.NUMBER_MISS_FRACTION, 8),
    (b'{"a": 1e}', rj.NUMBER_MISS_EXPONENT, 8),
    (b'{"a": 01}', rj.OBJECT_MISS_COMMA_OR_CURLY, 7),
    (b'{"a": tru}', rj.VALUE_INVALID, 9),
    (b'{"a": "\\ud800"}', rj.STRING_UNICODE_SURROGATE_INVALID, 7),
    (b'{"a": "\\uZZZZ"}', rj.STRING_UNICODE_ESCAPE_INVALID_HEX, 7),
    (b'{"a": "\\q"}', rj.STRING_ESCAPE_INVALID, 7),
    (b'{"a": "x\x01"}', rj.STRING_ESCAPE_INVALID, 8),
    (b'{"a": "x\x00"}', rj.STRING_MISS_QUOTATION_MARK, 8),
    (b'{"a": "open', rj.STRING_MISS_QUOTATION_MARK, 11),
    (b'{"a": Infinit}', rj.VALUE_INVALID, 13),
]


@pytest.mark.parametrize("body, message, offset", PARSE_ERRORS)
def test_parse_errors_carry_rapidjson_message_and_offset(body, message, offset):
    with pytest.raises(rj.ParseError) as info:
        rj.parse(body)
    assert (info.value.message, info.value.offset) == (message, offset)


@pytest.mark.parametrize("body, expected", [
    (b'{"instances": [1]} trailing', {"instances": [1]}),  # kParseStopWhenDoneFlag
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # UTF-8 BOM
    (b'{"a": 1, "a": 2}', {"a": 1}),  # the first of duplicate keys (FindMember)
    (b'{"a": [1, 2.5, -0, 1e5]}', {"a": [1, 2.5, 0, 100000.0]}),
    (b'"text"', "text"),
])
def test_parse_accepts_what_rapidjson_accepts(body, expected):
    assert rj.parse(body) == expected


def test_integers_beyond_uint64_count_as_doubles():
    big = rj.parse(b"[12345678901234567890123]")[0]
    assert rj.is_rapidjson_double(big) and rj.debug_string(big) == "1.2345678901234568e22"
    assert not rj.is_rapidjson_double(2**64 - 1)


def test_parse_nan_and_infinity_tokens():
    doc = rj.parse(b'{"a": NaN, "b": -NaN, "c": Inf, "d": -Infinity, "e": Infinity}')
    assert math.isnan(doc["a"]) and math.isnan(doc["b"])
    assert (doc["c"], doc["d"], doc["e"]) == (math.inf, -math.inf, math.inf)


def test_fast_and_fallback_parsers_agree():
    body = b'{"x": [[0.1, -2.5e-3, 7], [1e21, 3, 0.000001]], "s": "a\\"b\\u00e9", "t": true}'
    assert rj.parse(body) == rj._Reader(body).parse()


@pytest.mark.parametrize("value, text", [
    (1.0, "1.0"), (0.1, "0.1"), (100.0, "100.0"), (1e21, "1e21"),
    (1e20, "100000000000000000000.0"), (1.5e-7, "1.5e-7"), (0.001, "0.001"),
    (123.456, "123.456"), (-0.0, "-0.0"), (1.23e22, "1.23e22"), (math.nan, None),
    (math.inf, None),
])
def test_format_double_like_rapidjson_dtoa(value, text):
    assert rj.format_double(value) == text


def test_debug_string_is_pretty_with_single_line_arrays():
    assert rj.debug_string({"instances": [1, 2.5, "a\"b\n"], "x": {"y": None}}) == (
        '{\n    "instances": [1, 2.5, "a\\"b\\n"],\n    "x": {\n        "y": null\n    }\n}')


def test_debug_string_stops_at_nan_and_after_256_bytes():
    assert rj.debug_string(math.nan) == ""
    assert rj.debug_string([1, math.nan, 2]) == "[1, "
    long = rj.debug_string({"instances": list(range(1000))})
    assert 256 <= len(long) < 270 and long.startswith('{\n    "instances": [0, 1, 2')
