"""The model collection the header and identify benchmarks read: 1,000 sparse safetensors files.

The layouts are the ones the identify tests use (``tools.fingerprinting``: diffusers and
transformers models built on the meta device with the families' real configurations, named as
each tool writes them), so every checkpoint and LoRA is a file a fingerprint should recognise:

- 100 SD1.5 single-file checkpoints in the ldm layout (UNet, VAE, CLIP-L; 1,130 tensors, F16
  mostly, some F32 and BF16, half of them with CLIP's I64 ``position_ids`` as the original
  release has, some saved without the VAE);
- 400 kohya LoRAs with sd-scripts' metadata (``ss_*`` keys with a tag-frequency table, and
  modelspec): 240 for SD1.5 (UNet and text encoder, 792 tensors, or UNet only) and 160 for SDXL
  (half UNet-only, 2,166 tensors; half with both text encoders, 2,958 tensors), ranks 4 to 128,
  some with their ``alpha`` scalars kept in F32;
- 500 textual-inversion embeddings: 400 for SD1.5 (``emb_params``), 100 for SDXL (``clip_l``
  and ``clip_g``), 1 to 16 vectors. No fingerprint names embeddings: they come out unknown.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

from compiler.tensorfile import canonical, write_sparse

Layout = dict[str, tuple[int, ...]]

COUNTS = {"checkpoint": 100, "lora": 400, "embedding": 500}
SDXL_LORAS = 160
SDXL_EMBEDDINGS = 100
POSITION_IDS = "cond_stage_model.transformer.text_model.embeddings.position_ids"


class Layouts:
    """The layouts the collection is cut from (derived once: building the models is slow)."""

    def __init__(self) -> None:
        from tools.fingerprinting.derive import derive

        sources = derive().sources
        self.checkpoint: Layout = {
            key: tuple(int(size or 0) for size in shape)
            for part in ("sd1/ldm", "clip-l/ldm", "kl-f8/ldm")
            for key, shape in sources[part].layout.items()
        }
        self.sd15_lora = dict(sources["lora-sd1/kohya"].layout)
        self.sdxl_lora = dict(sources["lora-sdxl/kohya"].layout)


def write_collection(folder: Path) -> dict[str, list[Path]]:
    """Write the collection into ``folder``; the paths of each kind of file."""
    rng = random.Random(20240501)
    layouts = Layouts()
    groups: dict[str, list[Path]] = {kind: [] for kind in COUNTS}
    for index in range(COUNTS["checkpoint"]):
        path = folder / f"checkpoint-{index:03}.safetensors"
        dtype = rng.choices(["F16", "F32", "BF16"], [7, 2, 1])[0]
        without_vae = rng.random() < 0.15
        tensors = {
            name: (dtype, list(shape))
            for name, shape in layouts.checkpoint.items()
            if not (without_vae and name.startswith("first_stage_model."))
        }
        if index % 2:
            tensors[POSITION_IDS] = ("I64", [1, 77])
        write_sparse(path, tensors, {"format": "pt"} if rng.random() < 0.5 else None)
        groups["checkpoint"].append(path)
    for index in range(COUNTS["lora"]):
        path = folder / f"lora-{index:03}.safetensors"
        xl = index < SDXL_LORAS
        layout = layouts.sdxl_lora if xl else layouts.sd15_lora
        if index % 2 if xl else rng.random() < 0.3:
            layout = {key: shape for key, shape in layout.items() if key.startswith("lora_unet_")}
        rank = rng.choice([4, 8, 16, 32, 64, 128])
        alpha = "F32" if rng.random() < 0.3 else "F16"
        tensors = {
            name: (
                alpha if name.endswith(".alpha") else "F16",
                [rank if size is None else size for size in shape],
            )
            for name, shape in layout.items()
        }
        write_sparse(path, tensors, _kohya_metadata(rng, index, rank, xl))
        groups["lora"].append(path)
    for index in range(COUNTS["embedding"]):
        path = folder / f"embedding-{index:03}.safetensors"
        vectors = rng.randint(1, 16)
        if index < SDXL_EMBEDDINGS:
            write_sparse(
                path, {"clip_l": ("F32", [vectors, 768]), "clip_g": ("F32", [vectors, 1280])}
            )
        else:
            write_sparse(path, {"emb_params": ("F32", [vectors, 768])})
        groups["embedding"].append(path)
    return groups


def _kohya_metadata(rng: random.Random, index: int, rank: int, xl: bool) -> dict[str, str]:
    """What sd-scripts writes into a LoRA it trained (a representative subset of its keys)."""
    tags = {f"tag_{n}": rng.randint(1, 400) for n in range(rng.randint(20, 300))}
    base = "sd_xl_base_1.0.safetensors" if xl else "v1-5-pruned-emaonly.safetensors"
    architecture = "stable-diffusion-xl-v1-base/lora" if xl else "stable-diffusion-v1/lora"
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(rank // 2),
        "ss_output_name": f"character-{index}",
        "ss_sd_model_name": base,
        "ss_base_model_version": "sdxl_base_v1-0" if xl else "sd_v1",
        "ss_learning_rate": "0.0001",
        "ss_num_epochs": str(rng.randint(1, 20)),
        "ss_training_started_at": str(1_700_000_000 + rng.randint(0, 10**7)),
        "ss_tag_frequency": json.dumps({"img": tags}),
        "ss_dataset_dirs": json.dumps({"img": {"n_repeats": 10, "img_count": 40}}),
        "modelspec.architecture": architecture,
        "modelspec.title": f"character {index}",
    }


def safe_open_keys(path: Path) -> list[str]:
    """The baseline: the format's own reader opening the file and listing its tensor names."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as reader:
        return list(reader.keys())


def best_times(
    paths: list[Path], ours: Callable[[Path], object], rounds: int
) -> tuple[float, float]:
    """The best of ``rounds`` interleaved passes of ``ours`` and of :func:`safe_open_keys` over
    ``paths``, in seconds. Each pass of ours starts with mirc's memos empty, as a run does."""
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for side, reader in enumerate((ours, safe_open_keys)):
            canonical.forget()
            start = time.perf_counter()
            for path in paths:
                reader(path)
            best[side] = min(best[side], time.perf_counter() - start)
    return best[0], best[1]


def unremembered(read: Callable[[Path], object]) -> Callable[[Path], object]:
    """``read`` with mirc's memo of tables emptied before each file: every file read as if its
    layout were new (its shape spellings are still remembered from other files)."""

    def cold(path: Path) -> object:
        canonical.forget_layouts()
        return read(path)

    return cold
