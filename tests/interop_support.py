"""Shared pieces of the interop tests: the upstream fixture, folder digests, small databases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

UPSTREAM = ROOT / "tests" / "fixtures" / "upstream" / "mir.json"


def upstream() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(UPSTREAM.read_text(encoding="utf-8"))
    return value


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path → bytes), links recorded as their target."""
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            files[rel] = b"-> " + str(path.readlink()).encode()
        elif path.is_file():
            files[rel] = path.read_bytes()
    return files


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for rel, data in tree_bytes(root).items():
        digest.update(rel.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=4), encoding="utf-8")
    return path


# A small database with one of each quirk the normalisation table covers.
SMALL: dict[str, Any] = {
    "info.unet.toy-xl": {
        "*": {"repo": "org/toy-xl", "pkg": {"0": {"diffusers": "ToyPipeline"}}},
        "Turbo.V2": {
            "pkg": {"0": {"precision": "ops.precision.float.f16", "generation": {"steps": 4}}}
        },
        "base": {
            "pkg": {"0": {"generation": {"width": 1024}}, "layer_256": ["a" * 64]},
        },
    },
    "info.artm.talker-1.0-": {
        "6B-4bit": {
            "repo": "org/talker",
            "pkg": {"0": {"mlx_audio ": "tts.generate.generate_audio", "gen_kwargs": {"n": 1}}},
        }
    },
    "info.lora.fast": {
        "toy-xl": {
            "repo": "org/fast",
            "pkg": {
                "0": {
                    "diffusers": {"load_lora_weights": {"fuse": 1.0}},
                    "scheduler": {"ops.scheduler.euler": {"timestep_spacing": "trailing"}},
                },
                "1": {"diffusers": {"load_lora_weights": {}}, "scheduler": "ops.scheduler.nope"},
            },
            "file_256": {"b" * 64: {"num_inference_steps": 8}},
        }
    },
    "ops.precision.float": {"F16": {"pkg": {"0": {"torch": {"float16": {"variant": "fp16"}}}}}},
    "ops.scheduler.euler": {"discrete": {"pkg": {"0": {"diffusers": "EulerDiscreteScheduler"}}}},
}
