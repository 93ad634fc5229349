"""``mirc merge``'s cache of the registry's block fingerprints: where it lives, how it is written,
and that a damaged, unreadable or unwritable cache never fails a merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch

from compiler import atomicfile
from compiler.merge import families
from compiler.merge.blocks import BlockFingerprint
from compiler.merge.families import cache_dir, cached_fingerprints
from tests.conftest import run_mirc

TABLE = [
    BlockFingerprint(
        "mir:x.y.z", {"k": (3, None)}, {"IN00": ("a.", "b.")}, {"vae": ("first_stage.",)}
    )
]


class Loads:
    """A stand-in for loading the registry that counts its calls."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> list[BlockFingerprint]:
        self.count += 1
        return TABLE


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    folder = tmp_path / "spec"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "a.yaml").write_text("kind: series\n", encoding="utf-8")
    return folder


def test_the_folder_is_mirc_cache_dir_then_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIRC_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("MIRC_CACHE_DIR", "")  # empty: not set
    assert cache_dir() == tmp_path / "xdg" / "mirc"
    monkeypatch.delenv("MIRC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert cache_dir() == tmp_path / "home" / ".cache" / "mirc"


def test_components_tables_survive_the_cache(spec: Path, tmp_path: Path) -> None:
    loads = Loads()
    cached_fingerprints(spec, tmp_path / "cache", loads)
    assert cached_fingerprints(spec, tmp_path / "cache", loads) == TABLE
    assert loads.count == 1
    assert cached_fingerprints(spec, tmp_path / "cache", loads)[0].components == {
        "vae": ("first_stage.",)
    }


@pytest.mark.parametrize(
    "damage",
    [
        "{not json",
        "",
        "[]",
        "null",
        '{"format": 1, "fingerprints": []}',  # another format
        '{"format": 2, "fingerprints": [{"mir": "m"}]}',
        '{"format": 2, "fingerprints": [{"mir": "m", "required": [], "blocks": {}, '
        '"components": {}}]}',
        '{"format": 2, "fingerprints": [{"mir": "m", "required": {"k": 3}, "blocks": {}, '
        '"components": {}}]}',
    ],
)
def test_a_damaged_cache_file_is_rebuilt(spec: Path, tmp_path: Path, damage: str) -> None:
    cache, loads = tmp_path / "cache", Loads()
    cached_fingerprints(spec, cache, loads)
    (path,) = cache.iterdir()
    path.write_text(damage, encoding="utf-8")
    assert cached_fingerprints(spec, cache, loads) == TABLE
    assert loads.count == 2  # the damaged file was not believed
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == families.FORMAT
    assert cached_fingerprints(spec, cache, loads) == TABLE
    assert loads.count == 2  # and the rebuilt one is read again


def test_an_unreadable_cache_file_is_ignored(spec: Path, tmp_path: Path) -> None:
    cache, loads = tmp_path / "cache", Loads()
    cached_fingerprints(spec, cache, loads)
    (path,) = cache.iterdir()
    path.unlink()
    path.mkdir()  # a folder where the file goes: neither read nor replaced
    assert cached_fingerprints(spec, cache, loads) == TABLE
    assert cached_fingerprints(spec, cache, loads) == TABLE
    assert loads.count == 3


def test_the_file_is_replaced_whole_or_not_at_all(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written to a temporary file and renamed: a failed rename leaves nothing behind."""
    cache, loads = tmp_path / "cache", Loads()

    def fail(source: object, target: object) -> None:
        raise OSError("rename failed")

    with monkeypatch.context() as patch:
        patch.setattr(atomicfile.os, "replace", fail)
        assert cached_fingerprints(spec, cache, loads) == TABLE
    assert list(cache.iterdir()) == []
    cached_fingerprints(spec, cache, loads)
    assert [p.suffix for p in cache.iterdir()] == [".json"] and loads.count == 2


def _sd1_models(folder: Path) -> None:
    from tests.test_merge import SD1_FINGERPRINT

    for name in "ab":
        tensors = {k: torch.zeros(s, dtype=torch.float16) for k, s in SD1_FINGERPRINT.items()}
        safetensors.torch.save_file(tensors, str(folder / f"{name}.safetensors"))
    (folder / "r.mecha").write_text(
        'model "a"\nmodel "b"\nmerge "weighted_sum" &0 &1', encoding="utf-8"
    )


@pytest.mark.parametrize("how", ["a file in the way", "no permission"])
def test_an_unwritable_cache_folder_never_fails_the_merge(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sd1_models(tmp_path)
    (tmp_path / "file").write_text("", encoding="utf-8")
    if how == "a file in the way":
        monkeypatch.setenv("MIRC_CACHE_DIR", str(tmp_path / "file" / "cache"))
    else:  # as a read-only folder answers (tests may run as root, whom chmod does not stop)
        monkeypatch.setenv("MIRC_CACHE_DIR", str(tmp_path / "cache"))

        def refuse(path: object, data: bytes) -> None:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(families, "write_atomic", refuse)
    out = tmp_path / "o.safetensors"
    run = run_mirc("merge", str(tmp_path / "r.mecha"), "-o", str(out))
    assert run.status == 0, run.err
    assert run.err == ""
    with safetensors.safe_open(str(out), "pt") as handle:
        assert handle.metadata()["mir_id"].startswith("mir:info.unet.stable-diffusion-v1")
