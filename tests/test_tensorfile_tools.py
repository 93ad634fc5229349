"""Around the header reader: format sniffing and pickle refusal, digests, sparse test files."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from compiler.diagnostics import MircError, render_text
from compiler.tensorfile import (
    FileFormat,
    SafetensorsHeader,
    data_digest,
    layout_digest,
    layout_digests,
    parse_header,
    read_header,
    sniff,
    table_digests,
    write_sparse,
)
from tests.safetensors_peer import blob, ours, peer, same_reading, tensor


class Payload:
    """Unpickling this creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


# --- sniffing and refusing ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_is_refused_unopened(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": Payload(marker)}, protocol=protocol))
    assert sniff(path) is FileFormat.PICKLE
    with pytest.raises(MircError) as info:
        read_header(path)
    [diagnostic] = info.value.diagnostics
    assert diagnostic.code == "pickle-refused"
    lines = render_text(diagnostic).splitlines()
    assert lines[0] == (
        f"{path}: error: this is a pickle checkpoint (torch.save); mirc never unpickles a file, "
        "since loading a pickle can run any code (byte 0)"
    )
    assert "save_file" in lines[1] and "weights_only=True" in lines[1]
    assert not marker.exists()


def test_torch_zip_checkpoint_is_refused_unopened(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2), "evil": Payload(marker)}, path)
    assert sniff(path) is FileFormat.TORCH_ZIP
    with pytest.raises(MircError) as info:
        read_header(path)
    assert info.value.diagnostics[0].code == "pickle-refused"
    assert not marker.exists()


def test_other_formats(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(24))
    archive = tmp_path / "notes.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("readme.txt", "hello")
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a model\n")
    assert (sniff(gguf), sniff(archive), sniff(text)) == (
        FileFormat.GGUF,
        FileFormat.ZIP,
        FileFormat.UNKNOWN,
    )
    for path, message in ((gguf, "a GGUF file"), (archive, "a zip archive")):
        with pytest.raises(MircError) as info:
            read_header(path)
        assert info.value.diagnostics[0].code == "unsupported-format"
        assert message in info.value.diagnostics[0].message
    with pytest.raises(MircError) as info:
        read_header(text)
    assert info.value.diagnostics[0].code == "safetensors-header-too-large"


def test_safetensors_whose_length_starts_like_a_pickle(tmp_path: Path) -> None:
    header = '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'.ljust(640)
    path = tmp_path / "odd.safetensors"
    path.write_bytes(blob(header, 1))
    assert path.read_bytes()[:2] == b"\x80\x02"
    assert sniff(path) is FileFormat.SAFETENSORS
    assert list(read_header(path).tensors) == ["t"]


def test_sniff_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MircError) as info:
        sniff(tmp_path / "absent")
    assert info.value.diagnostics[0].code == "io"


# --- digests -------------------------------------------------------------------------------------


def test_data_digest_is_sha256_of_the_data_region(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"a": torch.arange(100, dtype=torch.float32), "b": torch.ones(3, 5)}, str(path))
    header = read_header(path)
    expected = hashlib.sha256(path.read_bytes()[header.data_start :]).hexdigest()
    assert data_digest(header) == expected
    assert data_digest(header, chunk_size=7) == expected


def test_data_digest_refuses_a_file_that_shrank(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"a": torch.zeros(64)}, str(path))
    header = read_header(path)
    with path.open("r+b") as handle:
        handle.truncate(header.file_size - 10)
    with pytest.raises(MircError) as info:
        data_digest(header)
    assert info.value.diagnostics[0].code == "safetensors-changed"


def test_layout_digest_format_and_independence(tmp_path: Path) -> None:
    first = write_sparse(tmp_path / "a.safetensors", {"w": ("F16", [4, 2]), "b": ("F16", [4])})
    second = write_sparse(
        tmp_path / "b.safetensors",
        {"b": ("F32", [4]), "w": ("F32", [4, 2])},
        metadata={"format": "pt"},
    )
    text = '["b",[4]]\n["w",[4,2]]\n'
    assert layout_digest(first.tensors) == hashlib.sha256(text.encode()).hexdigest()
    assert layout_digest(first.tensors) == layout_digest(second.tensors)
    typed = '["b",[4],"F16"]\n["w",[4,2],"F16"]\n'
    assert (
        layout_digest(first.tensors, with_dtype=True) == hashlib.sha256(typed.encode()).hexdigest()
    )
    assert layout_digest(first.tensors, with_dtype=True) != layout_digest(
        second.tensors, with_dtype=True
    )


# Names that JSON writes as they are, and names it escapes (which the general reader reads).
table_names = st.text(alphabet=st.sampled_from('ab.\\"\x01é_09'), max_size=6)
table_layouts = st.dictionaries(
    table_names,
    st.tuples(
        st.sampled_from(["F16", "BF16", "F32", "I64", "U8"]),
        st.lists(st.integers(0, 4), max_size=3),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(table_layouts, st.booleans())
def test_table_digests_are_the_row_digests(
    layout: dict[str, tuple[str, list[int]]], by_name: bool
) -> None:
    """The column-wise hashes are the row-wise ones, whether the file lists the tensors in
    name order or not, and the table finds each tensor by name either way."""
    header = _parsed(dict(sorted(layout.items())) if by_name else layout)
    assert table_digests(header.tensors) == layout_digests(header.tensors.rows())
    for name, (dtype, shape) in layout.items():
        assert header.tensors[name].dtype == dtype
        assert header.tensors.shape_of(name) == tuple(shape)
    assert header.tensors.shape_of("not a tensor") is None


def _parsed(layout: dict[str, tuple[str, list[int]]]) -> SafetensorsHeader:
    """A compact header of ``layout``'s tensors in its order, read (no file needed)."""
    entries: dict[str, object] = {}
    offset = 0
    for name, (dtype, shape) in layout.items():
        size = math.prod(shape) * {"F16": 2, "BF16": 2, "F32": 4, "I64": 8, "U8": 1}[dtype]
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode()
    return parse_header("case", raw, 8 + len(raw) + offset)


# --- sparse files -------------------------------------------------------------------------------

LAYOUT = {
    "model.diffusion_model.input_blocks.0.0.weight": ("F16", [320, 4, 3, 3]),
    "model.diffusion_model.input_blocks.0.0.bias": ("F16", [320]),
    "first_stage_model.encoder.conv_in.weight": ("F32", [128, 3, 3, 3]),
    "cond_stage_model.transformer.text_model.embeddings.position_ids": ("I64", [1, 77]),
    "scalar": ("BF16", []),
    "flags": ("BOOL", [3]),
}
TORCH_DTYPES = {
    "F16": torch.float16,
    "F32": torch.float32,
    "I64": torch.int64,
    "BF16": torch.bfloat16,
    "BOOL": torch.bool,
}


def test_sparse_file_has_the_header_safetensors_writes(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.safetensors"
    real = tmp_path / "real.safetensors"
    write_sparse(sparse, LAYOUT, metadata={"format": "pt"})
    zeros = {
        name: torch.zeros(shape, dtype=TORCH_DTYPES[dtype])
        for name, (dtype, shape) in LAYOUT.items()
    }
    save_file(zeros, str(real), metadata={"format": "pt"})
    assert sparse.read_bytes() == real.read_bytes()
    assert same_reading(ours(sparse), peer(sparse))
    assert [path.name for path in tmp_path.iterdir()] != [] and not list(tmp_path.glob(".sparse-*"))


def test_sdxl_sized_sparse_file_costs_no_disk(tmp_path: Path) -> None:
    layout = {
        f"model.diffusion_model.blocks.{i}.weight": ("F32", [10240, 10240]) for i in range(16)
    }
    path = tmp_path / "big.safetensors"
    header = write_sparse(path, layout)
    size = path.stat().st_size
    assert size == header.data_start + 16 * 10240 * 10240 * 4 > 6 * 2**30
    assert path.stat().st_blocks * 512 < 2**20
    assert same_reading(ours(path), peer(path))


def test_sparse_refuses_what_no_file_could_hold(tmp_path: Path) -> None:
    for tensors, message in (
        ({"t": ("F17", [1])}, "unknown dtype"),
        ({"__metadata__": ("U8", [1])}, "cannot name a tensor"),
        ({"t": ("U8", [-1])}, "non-negative"),
        ({"t": ("U8", [2**40, 2**40])}, "overflows"),
        ({"t": ("F4", [3])}, "whole number of bytes"),
    ):
        with pytest.raises(ValueError, match=message):
            write_sparse(tmp_path / "x.safetensors", tensors)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_sparse_metadata_is_written_sorted(tmp_path: Path) -> None:
    header = write_sparse(tmp_path / "m.safetensors", {"t": ("U8", [2])}, {"b": "2", "a": "1"})
    raw = (tmp_path / "m.safetensors").read_bytes()[8 : header.data_start]
    assert json.loads(raw)["__metadata__"] == {"a": "1", "b": "2"}
    assert raw.index(b'"a"') < raw.index(b'"b"')
    assert tensor("U8", [2], 0, 2) == json.loads(raw)["t"]
