"""The staged output tree: files written by its own thread, swapped in whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.write import StagedTree, WriteError, read_tree, write_tree


def test_tree_is_swapped_in_whole(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    write_tree(out, {"old.txt": b"old"})
    files = {f"d{n % 3}/f{n}.json": bytes([n]) * n for n in range(50)}
    with StagedTree(out) as tree:
        for rel, data in files.items():
            tree.write(rel, data)
        tree.flush()
        assert read_tree(tree.folder) == files  # all on disk once flushed, before the swap
        assert read_tree(out) == {"old.txt": b"old"}
        tree.commit()
    assert read_tree(out) == files
    assert [p.name for p in tmp_path.iterdir()] == ["generated"]  # no staging folder left


def test_error_of_the_writing_thread_reaches_commit_and_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    write_tree(out, {"keep.txt": b"keep"})
    with pytest.raises(OSError), StagedTree(out) as tree:
        tree.write("x", b"a file")
        tree.write("x/y", b"under a file: cannot be made")
        tree.write("z", b"after the error")
        tree.commit()
    assert read_tree(out) == {"keep.txt": b"keep"}
    assert [p.name for p in tmp_path.iterdir()] == ["generated"]


@pytest.mark.parametrize("rel", ["../escape", "/abs", "a/../b", "a//b", ""])
def test_unsafe_path_is_refused_when_handed_over(tmp_path: Path, rel: str) -> None:
    out = tmp_path / "generated"
    with StagedTree(out) as tree, pytest.raises(WriteError):
        tree.write(rel, b"x")
    assert not out.exists()
