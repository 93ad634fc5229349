"""Properties of the header reader: it only ever raises MircError, it accepts what the format's
reader accepts (refusing more only in the documented cases), and its canonical fast path agrees
with its general reader on every header."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.diagnostics import MircError
from compiler.tensorfile import DTYPE_BITS, SafetensorsHeader, canonical, header, parse_header
from tests.safetensors_peer import Verdict, blob, ours, peer, same_reading

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that change JSON structure or the format's rules, for mutations.
TOKENS = [
    b'"', b"{", b"}", b"[", b"]", b",", b":", b" ", b"\\", b"0", b"1", b"-", b"-0", b"1e0",
    b"NaN", b"null", b"true", b"\xff", b"\x00", b"\\ud800", b'"a":1,', b'"t":{}',
    b"99999999999999999999", b'"F4"', b'"C64"', b'"__metadata__"',
]  # fmt: skip

names = st.text(min_size=0, max_size=12)
dtypes = st.sampled_from(sorted(DTYPE_BITS))
shapes = st.lists(st.integers(0, 5), max_size=3)
layouts = st.dictionaries(names, st.tuples(dtypes, shapes), max_size=5)
metadatas = st.none() | st.dictionaries(names, st.text(max_size=8), max_size=3)


def serialize(layout: dict[str, tuple[str, list[int]]], metadata: dict[str, str] | None) -> bytes:
    """A header as the serializer writes it (sizes rounded down for sub-byte dtypes)."""
    entries: dict[str, object] = {} if metadata is None else {"__metadata__": metadata}
    offset = 0
    for name, (dtype, shape) in layout.items():
        count = 1
        for dim in shape:
            count *= dim
        size = count * DTYPE_BITS[dtype] // 8
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    return blob(json.dumps(entries, separators=(",", ":"), ensure_ascii=False), offset)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A serialized header with a few random edits: replace, insert, delete, truncate, extend."""
    content = bytearray(serialize(draw(layouts), draw(metadatas)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(content)))
        edit = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "extend"]))
        token = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=2))
        if edit == "replace":
            content[at : at + len(token)] = token
        elif edit == "insert":
            content[at:at] = token
        elif edit == "delete":
            del content[at : at + draw(st.integers(1, 4))]
        elif edit == "truncate":
            del content[at:]
        else:
            content += token
    return bytes(content)


SPELLINGS = ["-{}", "-{}", "{}.0", "{}e0", "0{}", "+{}", " {} "]
EXTRAS = [
    ',"x":1e308', ',"x":1e999', ',"x":-0', ',"x":[' + "[" * 124 + "]" * 124 + "]",
    ',"x":[' + "[" * 125 + "]" * 125 + "]", ',"x":{"k":1,"k":2}', ',"x":"\\ud800"',
    ',"dtype":"U8"', ',"x":NaN', ',"x":{"y":[1,{"z":null}]}',
]  # fmt: skip
TWISTS = [
    "repeat a name", "name a tensor __metadata__", "control character in a name",
    "escape a name", "spell a number oddly", "unknown key", "shuffle the entries",
    "metadata not first", "odd padding", "data a byte off", "huge dimension", "offsets shifted",
    "reorder the fields", "separators in a name", "close oddly", "metadata of another kind",
]  # fmt: skip
# Metadata values that are not a map of strings to strings, or are one spelled unusually.
ODD_METADATA = [
    '["ab","cd"]', '[["k","v"]]', '"text"', "1", "null", "true", "[]", "{}", '{"k":["v"]}',
    '{"k":{"a":"b"}}', '{"k":"v","k":"w"}', '{"k":"\\ud800"}', '{"k":"\\\\ud800"}',
    '{"k":"\\ud83d\\ude00"}', '{"k":1e999}', '{"k":NaN}', '{ "k" : "v" }', '{"k":"a\tb"}',
    '{"k":"' + "[" * 200 + '"}', "[" * 3000 + "]" * 3000,
]  # fmt: skip
# Text that separates the fields of an entry, to put inside names.
SEPARATORS = [
    ":{", '":{"dtype":"', '","shape":[', '],"data_offsets":[', ']},"', "]}}", ":[1,2],", "\\u0000",
]  # fmt: skip
FIELDS = ("dtype", "shape", "data_offsets")
# What may stand in for the brace that closes the header.
CLOSINGS = ["]", ",", "x", " ", "}}", "", '"']


@dataclass
class Entry:
    """One tensor entry as written: the name's JSON text, and each number's spelling."""

    name: str
    dtype: str
    shape: list[int]
    extra: str = ""
    spelling: dict[str, str] = field(default_factory=dict)
    order: tuple[str, ...] = FIELDS

    def text(self, begin: int, end: int) -> str:
        spell = {part: self.spelling.get(part, "{}") for part in ("begin", "end", "dim")}
        dims = ",".join(spell["dim"].format(dim) for dim in self.shape)
        offsets = spell["begin"].format(begin) + "," + spell["end"].format(end)
        values = {"dtype": f'"{self.dtype}"', "shape": f"[{dims}]", "data_offsets": f"[{offsets}]"}
        fields = ",".join(f'"{key}":{values[key]}' for key in self.order)
        return f"{self.name}:{{{fields}{self.extra}}}"


def twist(draw: st.DrawFn, entry: Entry, other: Entry, kind: str) -> None:
    """Give one entry one of the twists that changes it alone."""
    if kind == "repeat a name":
        entry.name = other.name
    elif kind == "name a tensor __metadata__":
        entry.name = '"__metadata__"'
    elif kind == "control character in a name":
        entry.name = '"' + draw(st.sampled_from(["\x00", "\x01", "\x1f", "\n"])) + 'c"'
    elif kind == "escape a name":
        entry.name = json.dumps(json.loads(entry.name, strict=False) + "é", ensure_ascii=True)
    elif kind == "unknown key":
        entry.extra = draw(st.sampled_from(EXTRAS))
    elif kind == "huge dimension":
        at = draw(st.integers(0, len(entry.shape)))
        entry.shape.insert(at, draw(st.sampled_from([2**32, 2**63, 2**64])))
    elif kind == "spell a number oddly":
        part = draw(st.sampled_from(["begin", "end", "dim"]))
        entry.spelling[part] = draw(st.sampled_from(SPELLINGS))
    elif kind == "reorder the fields":
        entry.order = tuple(draw(st.permutations(FIELDS)))
    elif kind == "separators in a name":
        text = json.loads(entry.name, strict=False) + draw(st.sampled_from(SEPARATORS))
        entry.name = json.dumps(text, ensure_ascii=False)


def entry_texts(entries: list[Entry], shift_last: bool) -> tuple[list[str], int]:
    """The entries' texts with contiguous offsets (the last one shifted if asked); data length."""
    parts, offset = [], 0
    for entry in entries:
        count = 1
        for dim in entry.shape:
            count *= dim
        end = offset + count * DTYPE_BITS[entry.dtype] // 8
        shift = int(shift_last and entry is entries[-1])
        parts.append(entry.text(offset + shift, end + shift))
        offset = end
    return parts, offset


@st.composite
def crafted(draw: st.DrawFn) -> bytes:
    """A header as the serializer writes it, then given a few twists near the rules' edges."""
    entries = [
        Entry(json.dumps(name, ensure_ascii=False), draw(dtypes), draw(shapes))
        for name in draw(st.lists(names, min_size=1, max_size=4, unique=True))
    ]
    twists = draw(st.lists(st.sampled_from(TWISTS), max_size=2))
    for kind in twists:
        twist(draw, draw(st.sampled_from(entries)), draw(st.sampled_from(entries)), kind)
    parts, data = entry_texts(entries, "offsets shifted" in twists)
    if "shuffle the entries" in twists:
        parts = draw(st.permutations(parts))
    metadata = draw(st.none() | st.dictionaries(names, st.text(max_size=4), max_size=3))
    if metadata is not None or "metadata of another kind" in twists:
        value = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
        if "metadata of another kind" in twists:
            value = draw(st.sampled_from(ODD_METADATA))
        block = '"__metadata__":' + value
        parts.insert(
            draw(st.integers(0, len(parts))) if "metadata not first" in twists else 0, block
        )
    closing = draw(st.sampled_from(CLOSINGS)) if "close oddly" in twists else "}"
    text = ("{" + ",".join(parts) + closing).encode("utf-8")
    if "odd padding" in twists:
        text += draw(st.sampled_from([b"\t", b"\x00", b" x", b"\n\r", b""]))
    if "data a byte off" in twists:
        data += draw(st.sampled_from([1, -1]))
    return blob(text, max(0, min(data, 2**20)), pad="odd padding" not in twists)


def stricter_on_purpose(verdict: Verdict) -> bool:
    """The refusals the peer does not make, listed in test_tensorfile.STRICTER."""
    message = verdict.error or ""
    return (
        message.startswith("duplicate key")
        or message.endswith("must be an object with dtype, shape and data_offsets, not a list")
        or message.endswith("dtype must be a string, not an object")
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("headers")


def agree_with_peer(folder: Path, content: bytes) -> None:
    path = folder / "case.safetensors"
    path.write_bytes(content)
    mine = ours(path)
    theirs = peer(path)
    if mine.accepted:
        assert theirs.accepted, f"mirc accepted what safe_open refuses: {theirs.error}"
        assert same_reading(mine, theirs)
    elif theirs.accepted:
        assert stricter_on_purpose(mine), f"safe_open accepted what mirc refuses: {mine.error}"


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_mirc_errors(folder: Path, content: bytes) -> None:
    agree_with_peer(folder, content)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_headers_raise_only_mirc_errors(folder: Path, text: bytes) -> None:
    agree_with_peer(folder, blob(text, pad=False))


@SETTINGS
@given(layouts, metadatas)
def test_serialized_headers_are_read_as_the_peer_reads_them(
    folder: Path, layout: dict[str, tuple[str, list[int]]], metadata: dict[str, str] | None
) -> None:
    agree_with_peer(folder, serialize(layout, metadata))


@settings(SETTINGS, max_examples=600)
@given(mutated())
def test_mutated_headers_agree_with_the_peer(folder: Path, content: bytes) -> None:
    agree_with_peer(folder, content)


@settings(SETTINGS, max_examples=500)
@given(crafted())
def test_crafted_headers_agree_with_the_peer(folder: Path, content: bytes) -> None:
    agree_with_peer(folder, content)


@settings(SETTINGS, max_examples=1000)
@given(mutated() | crafted())
def test_fast_path_agrees_with_the_general_reader(content: bytes) -> None:
    length = int.from_bytes(content[:8], "little")
    raw = content[8 : 8 + length]
    if len(content) < 8 or len(raw) < length:
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    data_length = len(content) - 8 - length
    fast = canonical.recognise(text, data_length)
    try:
        general = header._read_general("case", raw, text, data_length)
    except MircError:
        assert fast is None
        return
    if fast is not None:
        assert list(fast[0].items()) == list(general[0].items())
        assert fast[1] == general[1]


@pytest.mark.parametrize("metadata", [None, {"format": "pt"}])
@pytest.mark.parametrize("count", [1, 2, 3000])
def test_fast_path_takes_serializer_output(metadata: dict[str, str] | None, count: int) -> None:
    """With or without metadata, and past the size the fast path splits a chunk at a time."""
    layout = {f"layer.{n}.w": ("F16" if n % 7 else "U8", [n % 5, 3]) for n in range(count)}
    content = serialize(layout, metadata)
    length = int.from_bytes(content[:8], "little")
    text = content[8 : 8 + length].decode()
    fast = canonical.recognise(text, len(content) - 8 - length)
    assert fast is not None
    assert dict(fast[0].items()) == dict(
        parse_header("x", content[8 : 8 + length], len(content)).tensors.items()
    )
    general = header._read_general("x", content[8 : 8 + length], text, len(content) - 8 - length)
    assert list(fast[0].items()) == list(general[0].items())


# --- the memo of tables: a layout read once per process -------------------------------------


def _parsed(content: bytes) -> SafetensorsHeader:
    length = int.from_bytes(content[:8], "little")
    return parse_header("case", content[8 : 8 + length], len(content))


LAYOUT = {f"block.{n}.weight": ("F16", [n + 1, 3]) for n in range(40)}


def test_a_repeated_layout_is_one_table() -> None:
    """Files with the same entries share a table whatever their metadata and padding."""
    first = _parsed(serialize(LAYOUT, {"format": "pt"}))
    second = _parsed(serialize(LAYOUT, {"title": "another file, with more metadata"}))
    third = _parsed(serialize(LAYOUT, None))
    assert second.tensors is first.tensors is third.tensors
    assert (first.metadata, second.metadata, third.metadata) == (
        {"format": "pt"},
        {"title": "another file, with more metadata"},
        {},
    )


def test_the_same_entries_over_other_data_are_read_again() -> None:
    content = serialize(LAYOUT, None)
    assert _parsed(content).tensors["block.39.weight"].shape == (40, 3)
    with pytest.raises(MircError) as info:
        _parsed(content + b"\0" * 8)
    assert info.value.diagnostics[0].code == "safetensors-data-length"


def test_entries_alike_at_both_ends_are_compared_whole() -> None:
    """Same length, same first and last characters: the tables are still each file's own."""
    other = {k.replace("block.20.", "block.2x."): v for k, v in LAYOUT.items()}
    first, second = _parsed(serialize(LAYOUT, None)), _parsed(serialize(other, None))
    assert "block.20.weight" in first.tensors and "block.20.weight" not in second.tensors
    assert second.tensors["block.2x.weight"].shape == (21, 3)


def test_the_memo_of_tables_is_bounded() -> None:
    canonical.forget()
    for rank in range(3 * canonical._LAYOUTS_KEPT):
        _parsed(serialize({"w": ("F16", [rank, 2])}, None))
    assert len(canonical._layouts) == canonical._LAYOUTS_KEPT
