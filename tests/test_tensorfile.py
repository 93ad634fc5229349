"""The safetensors header reader, checked against the format's own reader (``safe_open``).

Real files written by safetensors read back as safe_open reports them; a corpus of malformed
files, one per rule, is refused with the right message and byte, and by safe_open too, except
where mirc is deliberately stricter (``STRICTER``, each with the reason).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

from compiler.diagnostics import MircError, render_text
from compiler.tensorfile import parse_header, read_header
from compiler.tensorfile.strict_json import MAX_DEPTH
from tests.safetensors_peer import blob, header_bytes, ours, peer, same_reading, tensor

F32x2 = tensor("F32", [2], 0, 8)
COMPACT = header_bytes(F32x2).decode()  # as the serializer writes an entry


def write(tmp_path: Path, content: bytes, name: str = "case.safetensors") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# --- real files -------------------------------------------------------------------------------

TORCH_TENSORS = {
    "model.diffusion_model.out.0.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
    "model.diffusion_model.out.0.bias": torch.ones(4, dtype=torch.float16),
    "first_stage_model.scale": torch.tensor(0.18215, dtype=torch.bfloat16),
    "cond_stage_model.position_ids": torch.arange(77, dtype=torch.int64).reshape(1, 77),
    "mask": torch.tensor([True, False, True]),
    "fp8.e4m3": torch.zeros(5, dtype=torch.float8_e4m3fn),
    "fp8.e5m2": torch.zeros(2, 3, dtype=torch.float8_e5m2),
    "empty": torch.zeros(0, 4),
    "also.empty": torch.zeros(3, 0, dtype=torch.int8),
    "u16": torch.zeros(3, dtype=torch.uint16),
    "wide": torch.zeros(2, dtype=torch.float64),
    "ünïcödé/名前": torch.zeros(1, dtype=torch.int32),
}


def test_torch_file_reads_as_safe_open_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_torch(TORCH_TENSORS, str(path), metadata={"format": "pt", "modelspec.title": "x"})
    mine, theirs = ours(path), peer(path)
    assert mine.accepted and theirs.accepted
    assert same_reading(mine, theirs)
    header = read_header(path)
    assert header.metadata == {"format": "pt", "modelspec.title": "x"}
    assert header.file_size == path.stat().st_size
    raw = path.read_bytes()
    for name, value in TORCH_TENSORS.items():
        info = header.tensors[name]
        begin, end = info.data_offsets
        assert info.nbytes == end - begin == value.numel() * value.element_size()
        assert info.shape == tuple(value.shape)
        stored = raw[header.data_start + begin : header.data_start + end]
        assert stored == value.reshape(-1).view(torch.uint8).numpy().tobytes(), name


def test_numpy_file_reads_as_safe_open_reads_it(tmp_path: Path) -> None:
    arrays = {
        "a": np.arange(6, dtype=np.int16).reshape(2, 3),
        "b": np.full((4,), 7, dtype=np.uint32),
        "c": np.zeros((), dtype=np.float32),
        "d": np.arange(3, dtype=np.uint64),
    }
    path = tmp_path / "arrays.safetensors"
    save_numpy(arrays, str(path))
    assert same_reading(ours(path), peer(path))
    header = read_header(path)
    assert header.metadata == {}
    assert header.tensors["c"].shape == ()
    assert {name: info.dtype for name, info in header.tensors.items()} == {
        "a": "I16",
        "b": "U32",
        "c": "F32",
        "d": "U64",
    }


def test_header_fields(tmp_path: Path) -> None:
    content = blob({"t": F32x2}, 8)
    header = read_header(write(tmp_path, content))
    length = int.from_bytes(content[:8], "little")
    assert (header.header_length, header.data_start) == (length, 8 + length)
    assert (header.file_size, header.data_length) == (len(content), 8)
    assert header.tensors["t"] == (header.tensors["t"].__class__("F32", (2,), (0, 8), 8))
    assert list(header.tensors.items()) == [("t", header.tensors["t"])]
    with pytest.raises(TypeError):
        header.metadata["x"] = "y"  # type: ignore[index]


# --- accepted by both readers -------------------------------------------------------------------

NESTED = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
PADDED_TO_640 = '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'.ljust(640)

ACCEPTED = {
    "whitespace everywhere": (
        ' \n{ "t" :\t{ "dtype" : "F32" , "shape" : [ 2 ] , "data_offsets" : [ 0 , 8 ] } }\r\n',
        8,
    ),
    "unknown keys in an entry": (
        {"t": tensor("F32", [2], 0, 8, extra={"deep": [1, 2.5, None, True, "x", -0, 10**30]})},
        8,
    ),
    f"unknown key nested {MAX_DEPTH} deep in all": (
        '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":' + NESTED + "}}",
        1,
    ),
    "escapes in names": ('{"\\u0074\\n\\"\\\\\\/":' + json.dumps(F32x2) + "}", 8),
    "surrogate pair escape": ('{"\\ud83d\\ude00":' + json.dumps(F32x2) + "}", 8),
    "DEL and non-ASCII in names": ({"a\x7f": F32x2, "模型.ü": tensor("U8", [0], 8, 8)}, 8),
    "metadata null": ({"__metadata__": None, "t": F32x2}, 8),
    "metadata last": ('{"t":' + json.dumps(F32x2) + ',"__metadata__":{"k":"v"}}', 8),
    "metadata only": ({"__metadata__": {"a": "b", "": ""}}, 0),
    "empty header object": ("{}", 0),
    "empty tensors sharing an offset": (
        {"z": tensor("F16", [0, 3], 0, 0), "y": tensor("I8", [5, 0], 0, 0), "t": F32x2},
        8,
    ),
    "scalar": ({"t": tensor("I64", [], 0, 8)}, 8),
    "header order differs from offset order": (
        {"b": tensor("U8", [4], 8, 12), "a": F32x2},
        12,
    ),
    "dims past 64 bits times zero": ({"t": tensor("U8", [0, 2**63, 4], 0, 0)}, 0),
    "F4 whole bytes": ({"t": tensor("F4", [2, 3], 0, 3)}, 3),
    "F6 whole bytes": ({"t": tensor("F6_E2M3", [4], 0, 3), "u": tensor("F6_E3M2", [4], 3, 6)}, 6),
    "newer dtypes": (
        {
            "c": tensor("C64", [1], 0, 8),
            "e": tensor("F8_E8M0", [2], 8, 10),
            "f": tensor("F8_E4M3FNUZ", [1], 10, 11),
            "g": tensor("F8_E5M2FNUZ", [1], 11, 12),
        },
        12,
    ),
    "length prefix that looks like a pickle": (PADDED_TO_640, 1),
}


@pytest.mark.parametrize(("header", "data"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_by_both(tmp_path: Path, header: object, data: int) -> None:
    path = write(tmp_path, blob(header, data))
    mine, theirs = ours(path), peer(path)
    assert mine.accepted, mine.error
    assert theirs.accepted, theirs.error
    assert same_reading(mine, theirs)


# --- refused ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A malformed file, the code and message mirc refuses it with, and the byte (or None)."""

    content: bytes
    code: str
    message: str
    byte: int | None = None


def after_header(content: bytes) -> int:
    return 8 + int.from_bytes(content[:8], "little")


def at(content: bytes, needle: bytes, occurrence: int = 1) -> int:
    """The file offset of the ``occurrence``-th ``needle``."""
    index = -1
    for _ in range(occurrence):
        index = content.index(needle, index + 1)
    return index


SHORT = blob({"t": F32x2}, 4)
LONG = blob({"t": F32x2}, 12)
NAN = blob('{"__metadata__":{"a":NaN}}')
DUP_FIELD = blob('{"t":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8)
DEEP_TEXT = '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":[' + NESTED + "]}}"
DEEP = blob(DEEP_TEXT, 1)
# Two objects, then the 128th container: the 126th bracket after "x":
DEEP_AT = 8 + DEEP_TEXT.index("[[") + MAX_DEPTH - 2
DEEPER_TEXT = DEEP_TEXT.replace(NESTED, "[" * 5000 + "]" * 5000)
DEEPER_AT = DEEP_AT
BAD_UTF8 = blob(b'{"t\xff":' + header_bytes(F32x2) + b"}", 8)
SURROGATE = blob('{"t\\udc00":' + json.dumps(F32x2) + "}", 8)

REFUSED = {
    "length over the limit": Bad(
        (100_000_001).to_bytes(8, "little") + b"{}",
        "safetensors-header-too-large",
        "over the limit",
        0,
    ),
    "length of 2**64-1": Bad(
        b"\xff" * 8 + b"{}", "safetensors-header-too-large", "over the limit", 0
    ),
    "header past the end of the file": Bad(
        (64).to_bytes(8, "little") + b"{}", "safetensors-header-past-end", "runs past the end", 0
    ),
    "shorter than the length prefix": Bad(
        b"\x02\x00\x00", "safetensors-too-small", "8-byte length", 0
    ),
    "empty file": Bad(b"", "safetensors-too-small", "8-byte length", 0),
    "truncated data": Bad(
        SHORT, "safetensors-data-length", "cover 8 bytes of data, but 4 bytes", len(SHORT)
    ),
    "trailing bytes": Bad(
        LONG, "safetensors-data-length", "cover 8 bytes of data, but 12 bytes", len(LONG) - 4
    ),
    "NaN": Bad(NAN, "safetensors-json", "NaN is not a JSON value", at(NAN, b"NaN")),
    "Infinity": Bad(
        blob('{"t":{"dtype":"F32","shape":[Infinity],"data_offsets":[0,4]}}', 4),
        "safetensors-json",
        "Infinity is not a JSON value",
    ),
    "-Infinity": Bad(
        blob('{"__metadata__":{"a":-Infinity}}'), "safetensors-json", "-Infinity is not a JSON"
    ),
    "byte-order mark": Bad(
        blob(b"\xef\xbb\xbf" + header_bytes({"t": F32x2}), 8), "safetensors-json", "byte-order", 8
    ),
    "duplicate key in an entry": Bad(
        DUP_FIELD, "safetensors-json", "duplicate key 'dtype'", at(DUP_FIELD, b'"dtype"', 2)
    ),
    "nesting past the limit": Bad(
        DEEP, "safetensors-json", "nested more than 127 levels deep", DEEP_AT
    ),
    "nesting past the recursion limit": Bad(
        blob(DEEPER_TEXT, 1), "safetensors-json", "nested more than 127 levels deep", DEEPER_AT
    ),
    "entry a deep list": Bad(
        blob('{"t":' + "[" * 5000 + "]" * 5000 + "}"), "safetensors-tensor", "not a list", 9
    ),
    "float in a shape": Bad(
        blob({"t": tensor("F32", [2.0], 0, 8)}, 8), "safetensors-tensor", "shape[0] must be a non"
    ),
    "exponent in a shape": Bad(
        blob('{"t":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}', 8),
        "safetensors-tensor",
        "not 2e0",
    ),
    "bool in a shape": Bad(
        blob({"t": tensor("U8", [True], 0, 1)}, 1), "safetensors-tensor", "not true"
    ),
    "negative offset": Bad(
        blob({"t": tensor("U8", [1], -1, 0)}, 1), "safetensors-tensor", "data_offsets[0] must"
    ),
    "minus zero offset": Bad(
        blob('{"t":{"dtype":"F32","shape":[2],"data_offsets":[-0,8]}}', 8),
        "safetensors-tensor",
        "not -0",
    ),
    "overlapping offsets": Bad(
        blob({"a": F32x2, "b": tensor("F32", [2], 4, 12)}, 12), "safetensors-offsets", "overlap"
    ),
    "gap between tensors": Bad(
        blob({"a": F32x2, "b": tensor("F32", [2], 12, 20)}, 20), "safetensors-offsets", "gap"
    ),
    "offsets not starting at 0": Bad(
        blob({"a": tensor("F32", [2], 4, 12)}, 12), "safetensors-offsets", "must start at 0", 8 + 1
    ),
    "end before begin": Bad(
        blob({"a": tensor("F32", [2], 8, 0)}), "safetensors-offsets", "end before they begin"
    ),
    "byte length wrong for the dtype": Bad(
        blob({"t": tensor("F32", [2], 0, 4)}, 4), "safetensors-size", "hold 4 bytes, but shape"
    ),
    "shape product overflows": Bad(
        blob({"t": tensor("U8", [2**32, 2**32], 0, 0)}), "safetensors-overflow", "overflows 64"
    ),
    "overflow before a zero dimension": Bad(
        blob({"t": tensor("F32", [2**63, 4, 0], 0, 0)}), "safetensors-overflow", "overflows 64"
    ),
    "bit count overflows": Bad(
        blob({"t": tensor("U8", [2**62], 0, 0)}), "safetensors-overflow", "overflows 64"
    ),
    "dimension past 64 bits": Bad(
        blob({"t": tensor("U8", [2**64], 0, 0)}), "safetensors-overflow", "does not fit in 64"
    ),
    "offset past 64 bits": Bad(
        blob({"t": tensor("U8", [0], 2**64, 2**64)}), "safetensors-overflow", "does not fit in 64"
    ),
    "F4 elements not filling bytes": Bad(
        blob({"t": tensor("F4", [3], 0, 2)}, 2), "safetensors-misaligned", "whole number of bytes"
    ),
    "unknown dtype": Bad(
        blob({"t": tensor("F17", [2], 0, 8)}, 8), "safetensors-dtype", "unknown dtype 'F17'"
    ),
    "lowercase dtype": Bad(
        blob({"t": tensor("f32", [2], 0, 8)}, 8), "safetensors-dtype", "unknown dtype 'f32'"
    ),
    "dtype not a string": Bad(
        blob({"t": tensor(32, [2], 0, 8)}, 8),  # type: ignore[arg-type]
        "safetensors-dtype",
        "dtype must be a string",
    ),
    "metadata value not a string": Bad(
        blob({"__metadata__": {"k": 1}}), "safetensors-metadata", "value for 'k' must be a string"
    ),
    "metadata a string": Bad(
        blob({"__metadata__": "x"}), "safetensors-metadata", "must map strings to strings", 24
    ),
    "metadata a list": Bad(
        blob({"__metadata__": ["k", "v"]}), "safetensors-metadata", "must map strings to strings"
    ),
    "invalid UTF-8": Bad(BAD_UTF8, "safetensors-utf8", "not valid UTF-8", at(BAD_UTF8, b"\xff")),
    "UTF-8 encoded surrogate": Bad(
        blob(b'{"t\xed\xa0\x80":' + header_bytes(F32x2) + b"}", 8), "safetensors-utf8", "UTF-8", 11
    ),
    "unpaired surrogate escape": Bad(
        SURROGATE, "safetensors-json", "unpaired UTF-16 surrogate", at(SURROGATE, b'"t')
    ),
    "tensor named __metadata__": Bad(
        blob(f'{{"t":{COMPACT},"__metadata__":{COMPACT}}}', 8),
        "safetensors-metadata",
        "value for 'shape' must be a string, not a list",
    ),
    "header a list": Bad(blob("[]"), "safetensors-header", "must be a JSON object", 8),
    "header a string": Bad(blob('"x"'), "safetensors-header", "must be a JSON object", 8),
    "entry null": Bad(blob({"t": None}), "safetensors-tensor", "must be an object"),
    "entry without data_offsets": Bad(
        blob({"t": {"dtype": "U8", "shape": [0]}}), "safetensors-tensor", "no 'data_offsets'"
    ),
    "three offsets": Bad(
        blob({"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 1]}}, 1),
        "safetensors-tensor",
        "two numbers [begin, end]",
    ),
    "text after the JSON": Bad(
        blob(header_bytes({"t": F32x2}) + b"x", 8), "safetensors-json", "text after the end"
    ),
    "NUL padding": Bad(
        blob(header_bytes({"t": F32x2}) + b"\x00" * 3, 8), "safetensors-json", "text after"
    ),
    "raw control character": Bad(
        blob(b'{"t\x01":' + header_bytes(F32x2) + b"}", 8), "safetensors-json", "control char", 11
    ),
    "number out of range": Bad(
        blob({"t": tensor("U8", [1], 0, 1, x=0)}, 1).replace(b'"x":0', b'"x":1e999'),
        "safetensors-json",
        "number out of range",
    ),
    "integer beyond f64": Bad(
        blob(
            header_bytes(
                '{"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":1' + "0" * 400 + "}}"
            )
        ),
        "safetensors-json",
        "number out of range",
    ),
    "empty header": Bad(blob(b"", pad=False), "safetensors-json", "expecting value", 8),
    "leading zero": Bad(
        blob('{"t":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}', 8),
        "safetensors-json",
        "expected ',' or ']'",
        38,
    ),
    "single quotes": Bad(blob("{'t':1}"), "safetensors-json", "double quotes", 9),
}

# Files the format's reader accepts and mirc refuses on purpose (RELIABILITY rule 2 asks for no
# duplicate keys at any depth; the peer's serde keeps the last), or because serde also reads an
# entry written as a positional list or a dtype written as {"F32": null}, spellings no writer
# produces that would let two readers see different tensors.
STRICTER = {
    "duplicate tensor name, serializer layout": Bad(
        blob(f'{{"t":{COMPACT},"t":{COMPACT}}}', 8), "safetensors-json", "duplicate key 't'", 62
    ),
    "duplicate tensor name": Bad(
        blob('{"t":' + json.dumps(F32x2) + ',"t":' + json.dumps(F32x2) + "}", 8),
        "safetensors-json",
        "duplicate key 't'",
    ),
    "duplicate tensor name after an escape": Bad(
        blob('{"t":' + json.dumps(F32x2) + ',"\\u0074":' + json.dumps(F32x2) + "}", 8),
        "safetensors-json",
        "duplicate key 't'",
    ),
    "duplicate metadata key": Bad(
        blob('{"__metadata__":{"k":"1","k":"2"}}'), "safetensors-json", "duplicate key 'k'"
    ),
    "duplicate key inside an unknown field": Bad(
        blob('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":{"k":1,"k":2}}}', 1),
        "safetensors-json",
        "duplicate key 'k'",
    ),
    "entry as a positional list": Bad(
        blob('{"t":["F32",[2],[0,8]]}', 8), "safetensors-tensor", "must be an object"
    ),
    "dtype as a one-key object": Bad(
        blob('{"t":{"dtype":{"F32":null},"shape":[2],"data_offsets":[0,8]}}', 8),
        "safetensors-dtype",
        "dtype must be a string",
    ),
}


def check_refusal(tmp_path: Path, bad: Bad) -> None:
    path = write(tmp_path, bad.content)
    with pytest.raises(MircError) as info:
        read_header(path)
    [diagnostic] = info.value.diagnostics
    assert diagnostic.code == bad.code
    assert bad.message in diagnostic.message
    assert diagnostic.span is not None and diagnostic.span.file == str(path)
    if bad.byte is not None:
        assert diagnostic.span.byte == bad.byte
    first = render_text(diagnostic).splitlines()[0]
    assert first.startswith(f"{path}: error: ") and first.endswith(f"(byte {diagnostic.span.byte})")


@pytest.mark.parametrize("bad", REFUSED.values(), ids=REFUSED.keys())
def test_refused_by_both(tmp_path: Path, bad: Bad) -> None:
    check_refusal(tmp_path, bad)
    assert not peer(tmp_path / "case.safetensors").accepted


@pytest.mark.parametrize("bad", STRICTER.values(), ids=STRICTER.keys())
def test_refused_by_mirc_though_the_peer_accepts(tmp_path: Path, bad: Bad) -> None:
    check_refusal(tmp_path, bad)
    assert peer(tmp_path / "case.safetensors").accepted


def test_unknown_dtype_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(MircError) as info:
        read_header(write(tmp_path, REFUSED["lowercase dtype"].content))
    assert info.value.diagnostics[0].notes == ("did you mean 'F32'?",)


def test_rendered_error_names_file_and_byte(tmp_path: Path) -> None:
    path = write(tmp_path, NAN, "model.safetensors")
    with pytest.raises(MircError) as info:
        read_header(path)
    rendered = render_text(info.value.diagnostics[0])
    assert rendered == f"{path}: error: NaN is not a JSON value (byte {at(NAN, b'NaN')})"


def test_missing_file_folder_and_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target, message in (
        (tmp_path / "absent.safetensors", "cannot open"),
        (tmp_path, "not a regular file"),
        (fifo, "not a regular file"),
    ):
        with pytest.raises(MircError) as info:
            read_header(target)
        assert message in info.value.diagnostics[0].message
        assert info.value.diagnostics[0].code == "io"


def test_parse_header_needs_no_file() -> None:
    content = blob({"__metadata__": {"a": "b"}, "t": F32x2}, 8)
    header = parse_header("mem", content[8 : after_header(content)], len(content))
    assert header.metadata == {"a": "b"} and header.tensors["t"].nbytes == 8
