"""Warm-up at load time: replaying `assets.extra/tf_serving_warmup_requests`, as TF Serving does.

The file is a TFRecord of `PredictionLog` protos (`saved_model_warmup_util.cc`); each record's
request runs once against the freshly loaded version before it serves, and any failure fails the
load. The TFRecord framing (length, masked CRC32C of the length, data, masked CRC32C of the data)
is read here without TensorFlow, with TensorFlow's error messages.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Iterator

from serving.errors import Code, ServingError

log = logging.getLogger("serving")

REQUESTS_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecord(path: str) -> Iterator[bytes]:
    """The records of a TFRecord file; raises DATA_LOSS like TensorFlow's `RecordReader`."""
    with open(path, "rb") as f:
        offset = 0
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise ServingError(Code.DATA_LOSS, f"truncated record at {offset}")
            (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != crc:
                raise ServingError(Code.DATA_LOSS, f"corrupted record at {offset}")
            data_offset = offset + 12
            data, footer = f.read(length), f.read(4)
            if len(data) < length or len(footer) < 4:
                raise ServingError(Code.DATA_LOSS, f"truncated record at {data_offset}")
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise ServingError(Code.DATA_LOSS, f"corrupted record at {data_offset}")
            yield data
            offset = data_offset + length + 4


def write_tfrecord(path: str, records) -> None:
    """Writes records as a TFRecord file (for tests and tools; the export writes its own)."""
    with open(path, "wb") as f:
        for data in records:
            header = struct.pack("<Q", len(data))
            f.write(header + struct.pack("<I", masked_crc32c(header)))
            f.write(data + struct.pack("<I", masked_crc32c(data)))


def run(version_path: str, replay: Callable[[object], None]) -> int:
    """Replays the warm-up requests of a version folder; returns how many records ran.

    `replay(prediction_log)` runs one record's request against the new version and raises
    `ServingError` on failure. A missing file is fine (warm-up is optional).
    """
    path = os.path.join(version_path, REQUESTS_FILE)
    if not os.path.exists(path):
        return 0
    from serving import _protos

    try:
        prediction_log_pb2 = _protos.load().prediction_log_pb2
    except _protos.ProtosUnavailable as e:
        log.warning("skipping warm-up of %s: %s", version_path, e)
        return 0
    count = 0
    try:
        for record in read_tfrecord(path):
            entry = prediction_log_pb2.PredictionLog()
            try:
                entry.ParseFromString(record)
            except Exception:  # google.protobuf.message.DecodeError
                message = f"Failed to parse warmup record: {record!r} from {path}"
                raise ServingError(Code.INVALID_ARGUMENT, message) from None
            replay(entry)
            count += 1
            if count > MAX_RECORDS:
                raise ServingError(
                    Code.INVALID_ARGUMENT,
                    f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
    except ServingError as e:
        if e.code == Code.DATA_LOSS:
            raise ServingError(Code.DATA_LOSS, f"{e.message}. Please verify your warmup data is "
                                               "in TFRecord format.") from None
        raise
    return count
