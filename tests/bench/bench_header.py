"""Headers per second: ``read_header`` against ``safetensors.safe_open(path, "pt").keys()``.

A temporary folder gets 1,000 sparse safetensors files with the headers of a model collection:
SD1.5-size checkpoints (the layouts of diffusers' SD1.5 UNet, VAE and CLIP text encoder, built on
the meta device, 1,130 tensors), kohya-style LoRAs for that UNet and text encoder (with the
trainer's metadata), and textual-inversion embeddings. Each reader reads every file's header; the
best of several interleaved rounds counts. Both readers validate the whole header; mirc also
builds its typed result, safe_open a list of names.

    PYTHONPATH=$PWD python3 -c 'from tests.bench.bench_header import run; print(*run(), sep="\\n")'
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from compiler.tensorfile import canonical, read_header, write_sparse

Layout = dict[str, tuple[str, list[int]]]

ROUNDS = 7
COUNTS = {"checkpoint": 100, "lora": 400, "embedding": 500}


def run() -> list[str]:
    """Build the folder, time both readers on it, and return the report lines."""
    with tempfile.TemporaryDirectory(prefix="mirc-bench-header-") as folder:
        groups = _write_collection(Path(folder))
        _check_same_names(path for paths in groups.values() for path in paths)
        lines = [_describe(groups)]
        totals = [0.0, 0.0]
        for kind, paths in groups.items():
            mine, theirs = _best_times(paths)
            totals = [totals[0] + mine, totals[1] + theirs]
            lines.append(_line(kind + "s", len(paths), mine, theirs))
        count = sum(len(paths) for paths in groups.values())
        lines.append(_line("all files", count, *totals) + " (target 2.00×)")
        mine, theirs = _best_times(groups["checkpoint"], _read_unmemoised)
        label = "checkpoints, shape memo emptied before each file"
        lines.append(_line(label, len(groups["checkpoint"]), mine, theirs))
    return lines


def _describe(groups: dict[str, list[Path]]) -> str:
    kinds = (f"{len(paths)} {kind}s ({_tensors(paths)})" for kind, paths in groups.items())
    count = sum(len(paths) for paths in groups.values())
    return f"{count} sparse safetensors files: " + ", ".join(kinds)


def _read_unmemoised(path: Path) -> object:
    canonical.forget_shapes()
    return read_header(path)


def _line(label: str, count: int, mine: float, theirs: float) -> str:
    return (
        f"{label}: mirc {count / mine:,.0f} headers/s, safe_open {count / theirs:,.0f} headers/s, "
        f"mirc/safe_open {theirs / mine:.2f}×"
    )


def _tensors(paths: list[Path]) -> str:
    sizes = sorted(len(read_header(path).tensors) for path in paths)
    low, high = sizes[0], sizes[-1]
    return f"{low} tensors" if low == high else f"{low}–{high} tensors"


def _best_times(
    paths: list[Path], ours: Callable[[Path], object] = read_header
) -> tuple[float, float]:
    """The best of ``ROUNDS`` interleaved passes of each reader over ``paths``."""
    readers: dict[str, Callable[[Path], object]] = {"mirc": ours, "safe_open": _safe_open_keys}
    best = dict.fromkeys(readers, float("inf"))
    for _ in range(ROUNDS):
        for name, reader in readers.items():
            start = time.perf_counter()
            for path in paths:
                reader(path)
            best[name] = min(best[name], time.perf_counter() - start)
    return best["mirc"], best["safe_open"]


def _safe_open_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as reader:
        return list(reader.keys())


def _check_same_names(paths: Iterable[Path]) -> None:
    for path in paths:
        assert sorted(read_header(path).tensors) == _safe_open_keys(path), path


# --- the collection -----------------------------------------------------------------------------


def _write_collection(folder: Path) -> dict[str, list[Path]]:
    rng = random.Random(20240501)
    checkpoint = _sd15_layout()
    groups: dict[str, list[Path]] = {kind: [] for kind in COUNTS}
    for index in range(COUNTS["checkpoint"]):
        path = folder / f"checkpoint-{index:03}.safetensors"
        dtype = "F16" if rng.random() < 0.8 else "F32"
        layout = {name: (dtype, shape) for name, (_, shape) in checkpoint.items()}
        write_sparse(path, layout, {"format": "pt"} if rng.random() < 0.5 else None)
        groups["checkpoint"].append(path)
    for index in range(COUNTS["lora"]):
        path = folder / f"lora-{index:03}.safetensors"
        rank = rng.choice([4, 8, 16, 32, 64, 128])
        write_sparse(path, _lora_layout(checkpoint, rank), _kohya_metadata(rng, index, rank))
        groups["lora"].append(path)
    for index in range(COUNTS["embedding"]):
        path = folder / f"embedding-{index:03}.safetensors"
        write_sparse(path, {"emb_params": ("F32", [rng.randint(1, 16), 768])})
        groups["embedding"].append(path)
    return groups


def _sd15_layout() -> Layout:
    """SD1.5's tensors as a single-file checkpoint names them, from diffusers on the meta device."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        parts = {
            "model.diffusion_model.": UNet2DConditionModel(
                cross_attention_dim=768, attention_head_dim=8
            ),
            "first_stage_model.": AutoencoderKL(
                block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4,
                layers_per_block=2,
            ),
            "cond_stage_model.transformer.": CLIPTextModel(CLIPTextConfig()),
        }
    return {
        prefix + name: ("F16", list(value.shape))
        for prefix, module in parts.items()
        for name, value in module.state_dict().items()
    }


LORA_TARGETS = (
    "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k",
    "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out",
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
    "mlp.fc1", "mlp.fc2",
)  # fmt: skip


def _lora_layout(checkpoint: Layout, rank: int) -> Layout:
    """A kohya LoRA for the checkpoint's attention and MLP layers: down, up and alpha each."""
    layout: Layout = {}
    for name, (_, shape) in checkpoint.items():
        module = name.removesuffix(".weight")
        if not module.endswith(LORA_TARGETS) or len(shape) < 2:
            continue
        side = "unet" if name.startswith("model.") else "te"
        stem = f"lora_{side}_" + module.split(".", 1 if side == "unet" else 2)[-1].replace(".", "_")
        tail = [1] * (len(shape) - 2)
        layout[stem + ".lora_down.weight"] = ("F16", [rank, shape[1], *tail])
        layout[stem + ".lora_up.weight"] = ("F16", [shape[0], rank, *tail])
        layout[stem + ".alpha"] = ("F16", [])
    return layout


def _kohya_metadata(rng: random.Random, index: int, rank: int) -> dict[str, str]:
    tags = {f"tag_{n}": rng.randint(1, 400) for n in range(rng.randint(20, 300))}
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(rank // 2),
        "ss_output_name": f"character-{index}",
        "ss_sd_model_name": "v1-5-pruned-emaonly.safetensors",
        "ss_learning_rate": "0.0001",
        "ss_num_epochs": str(rng.randint(1, 20)),
        "ss_training_started_at": str(1_700_000_000 + rng.randint(0, 10**7)),
        "ss_tag_frequency": json.dumps({"img": tags}),
        "ss_dataset_dirs": json.dumps({"img": {"n_repeats": 10, "img_count": 40}}),
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.title": f"character {index}",
    }
