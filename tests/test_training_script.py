"""Generated training scripts, run for real on the CPU: a tiny Stable Diffusion pipeline built
offline, six captioned images, the scripts rendered through the whole pipeline (check_registry →
plan_variant → plan_training_files → render)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.training_support import (
    build_tiny_pipeline,
    build_tiny_sdxl_pipeline,
    rendered_training_files,
    write_images,
)

FOLDER = "training/unet/tiny_sd"
SDXL_FOLDER = "training/unet/tiny_sdxl"
HOOKS = '''\
"""Records each hook point, the groups' learning rates, gradients and a weight digest."""

import hashlib
import json

RECORD = {"fired": {}, "rates": [], "forward_calls": 0, "grads": 0, "digest": None}


def _fire(point, state):
    RECORD["fired"][point] = RECORD["fired"].get(point, 0) + 1
    (state.args.output / f"hooks-{state.rank}.json").write_text(json.dumps(RECORD))


def _count_forward(module, inputs, output):
    RECORD["forward_calls"] += 1


def on_layer(name, module, state):
    if name == "mid_block":
        module.register_forward_hook(_count_forward)
    _fire("on_layer", state)


def on_step_start(state):
    RECORD["rates"] = sorted({g["initial_lr"] for g in state.optimizer.param_groups})
    _fire("on_step_start", state)


def on_loss(loss, state):
    _fire("on_loss", state)
    return loss * LOSS_SCALE


def on_after_backward(model, state):
    RECORD["grads"] = sum(p.grad is not None for p in model.parameters())
    _fire("on_after_backward", state)


def on_step_end(state):
    if state.step == state.max_steps:
        digest = hashlib.sha256()
        for name, param in sorted(state.model.named_parameters()):
            if param.requires_grad:
                digest.update(name.encode() + param.detach().numpy().tobytes())
        RECORD["digest"] = digest.hexdigest()
    _fire("on_step_end", state)


def on_epoch_end(state):
    _fire("on_epoch_end", state)


LOSS_SCALE = 1.0
'''


class Workspace:
    """The rendered files, the tiny pipeline, the images and a hooks module, in one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = rendered_training_files(root / "registry")
        for rel, text in self.files.items():
            path = root / "generated" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        self.pipeline = build_tiny_pipeline(root / "models")
        self.sdxl_pipeline = build_tiny_sdxl_pipeline(root / "models")
        self.data = write_images(root / "data")
        self.hooks = root / "record_hooks.py"
        self.hooks.write_text(HOOKS, encoding="utf-8")
        self.zero_hooks = root / "zero_loss_hooks.py"
        self.zero_hooks.write_text(HOOKS.replace("LOSS_SCALE = 1.0", "LOSS_SCALE = 0.0"))

    def script(self, target: str, folder: str = FOLDER) -> Path:
        return self.root / "generated" / folder / f"{target}.py"

    def argv(self, output: Path, *extra: str) -> list[str]:
        source = ["--source", str(self.pipeline), "--data", str(self.data)]
        return [*source, "--output", str(output), *extra]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    import torch

    torch.set_num_threads(1)  # as in the scripts' processes (THREADS): tiny models, busy machines
    return Workspace(tmp_path_factory.mktemp("training"))


# One thread per process: on a tiny model more threads only wait on each other.
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def offline_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0", **THREADS, **extra}


def run_script(argv: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env or offline_env(), check=False, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def load_script(path: Path) -> ModuleType:
    """The generated script as a module, to run ``main(argv)`` in this process."""
    found = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    sys.modules[found.name] = module  # dataclasses look their module up there
    found.loader.exec_module(module)
    return module


def log(output: Path) -> list[dict[str, Any]]:
    lines = (output / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def hook_record(output: Path, rank: int = 0) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((output / f"hooks-{rank}.json").read_text())
    return value


def safetensors_file(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as opened:
        return {k: opened.get_tensor(k) for k in opened.keys()}, opened.metadata()  # noqa: SIM118


def image_with(pipeline: Path, lora: Path | None) -> Any:
    from diffusers import StableDiffusionPipeline
    from torch import Generator

    pipe = StableDiffusionPipeline.from_pretrained(pipeline)
    pipe.set_progress_bar_config(disable=True)
    if lora is not None:
        pipe.load_lora_weights(str(lora))
    generator = Generator().manual_seed(0)
    return pipe(
        "a red square", height=32, width=32, num_inference_steps=2, generator=generator
    ).images[0]


# ---- the files ------------------------------------------------------------------------------


def test_one_script_per_target_and_launch_files_for_several_devices(workspace: Workspace) -> None:
    names = ["cpu.py", "cpu_2.py", "cpu_2.sh", "h100_cluster.py", "h100_cluster.sh"]
    scripts = [f"{f}/{n}" for f in (FOLDER, SDXL_FOLDER) for n in names]
    assert sorted(workspace.files) == sorted([*scripts, "training/runtime.py"])
    single = workspace.files[f"{FOLDER}/cpu_2.sh"]
    assert "torchrun} --standalone --nproc-per-node 2" in single
    cluster = workspace.files[f"{FOLDER}/h100_cluster.sh"]
    assert "--nnodes 4" in cluster and "--nproc-per-node 8" in cluster
    assert '--rdzv-backend c10d --rdzv-endpoint "$MASTER_ADDR:${MASTER_PORT:-29500}"' in cluster
    for text in (single, cluster):
        done = subprocess.run(["sh", "-n"], input=text, text=True, check=False)
        assert done.returncode == 0


def test_a_script_finds_its_runtime_by_its_own_path(workspace: Workspace, tmp_path: Path) -> None:
    """The shared code is found from the script's file, never the working folder: a script
    copied away from generated/ says what is missing instead of importing something else."""
    runtime = workspace.root / "generated" / "training" / "runtime.py"
    assert load_script(workspace.script("cpu")).runtime.__file__ == str(runtime)
    lone = tmp_path / "a" / "b" / "c" / "cpu.py"
    lone.parent.mkdir(parents=True)
    lone.write_text(workspace.files[f"{FOLDER}/cpu.py"], encoding="utf-8")
    (tmp_path / "runtime.py").write_text("raise SystemExit('wrong runtime')\n")
    done = subprocess.run(
        [sys.executable, str(lone), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1 and "the shared training code is missing" in done.stderr


def test_generated_python_passes_ruff(workspace: Workspace) -> None:
    scripts = [str(workspace.root / "generated" / p) for p in workspace.files if p.endswith(".py")]
    config = ["--config", str(ROOT / "pyproject.toml")]
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *config, *scripts],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


RENDER_DIGEST = """\
import hashlib, sys
from pathlib import Path
from tests.training_support import rendered_training_files
files = rendered_training_files(Path(sys.argv[1]))
print(hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest())
"""


def test_rendering_is_deterministic(workspace: Workspace, tmp_path: Path) -> None:
    digests = set()
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", RENDER_DIGEST, str(tmp_path / seed)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
            check=True,
        )
        digests.add(done.stdout.strip())
    mine = hashlib.sha256(repr(sorted(workspace.files.items())).encode()).hexdigest()
    assert digests == {mine}


def test_the_plan_reaches_the_script(workspace: Workspace) -> None:
    spec = load_script(workspace.script("cpu_2")).SPEC
    base = spec["variants"]["base"]
    assert spec["target"]["devices_per_node"] == 2 and list(spec["variants"]) == [
        "base",
        "flow",
        "vpred",
    ]
    lora = base["methods"]["lora"]
    assert lora["strategy"]["value"] == "ddp" and lora["launcher"]["value"] == "torchrun"
    assert lora["gradient_accumulation"]["value"] * lora["micro_batch"]["value"] * 2 >= 2
    assert all(d["reason"] for k, d in lora.items() if isinstance(d, dict) and "reason" in d)
    assert base["hyperparameters"]["descriptor"] == "1xb2-amp-coslr-1e"
    assert base["hyperparameters"]["lr_schedule"]["value"]["name"] == "cosine"
    assert base["layers"][1]["globs"] == ["down_blocks.0.attentions.0.*"]
    assert lora["metadata"]["modelspec.architecture"] == "tiny-sd/lora"
    assert spec["variants"]["flow"]["methods"]["lora"]["metadata"]["modelspec.prediction_type"] == (
        "flow"
    )


# ---- running them -----------------------------------------------------------------------------


def test_lora_run_checkpoint_resume_and_both_layouts(workspace: Workspace, tmp_path: Path) -> None:
    first, resumed = tmp_path / "first", tmp_path / "resumed"
    script = str(workspace.script("cpu"))
    extra = ["--max-steps", "4", "--checkpoint-every", "2", "--hooks", str(workspace.hooks)]
    run_script([sys.executable, script, *workspace.argv(first, *extra)])

    # (a) four finite losses; the adapter written with the MIR id and the ModelSpec keys
    entries = log(first)
    assert [e["step"] for e in entries] == [1, 2, 3, 4]
    assert all(math.isfinite(e["loss"]) and e["loss"] > 0 for e in entries)
    tensors, metadata = safetensors_file(first / "pytorch_lora_weights.safetensors")
    assert metadata["mir.id"] == "mir:info.unet.tiny-sd:base"
    assert metadata["modelspec.sai_model_spec"] == "1.0.0"
    assert metadata["modelspec.architecture"] == "tiny-sd/lora"
    assert metadata["modelspec.prediction_type"] == "epsilon"
    assert metadata["modelspec.resolution"] == "32x32" and metadata["mir.layout"] == "diffusers"
    ups = {k: v for k, v in tensors.items() if k.endswith("lora.up.weight")}
    frozen = {k for k in ups if ".attn2.to_k." in k}
    assert frozen and all(not ups[k].any() for k in frozen)  # the freeze rule held
    assert all(ups[k].abs().sum() > 0 for k in set(ups) - frozen)  # the rest learned

    # (d) every hook point fired; the layer rules made three learning rates
    record = hook_record(first)
    assert record["fired"]["on_step_start"] == record["fired"]["on_step_end"] == 4
    assert record["fired"]["on_loss"] == 8  # two micro-batches per step
    assert record["fired"]["on_epoch_end"] == 1 and record["fired"]["on_layer"] > 100
    assert record["forward_calls"] == 8 and record["grads"] > 0
    assert record["rates"] == pytest.approx([0.005, 0.01, 0.02])

    # (c) resuming from step 2 (mid-epoch) ends where the uninterrupted run did; (e) kohya names
    checkpoint = first / "checkpoint-00000002"
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "rng-0.json",
        "rng-0.safetensors",
        "training.json",
        "training.safetensors",
        "weights.safetensors",
    ]
    argv = workspace.argv(resumed, "--max-steps", "4", "--resume", str(checkpoint))
    load_script(workspace.script("cpu")).main([*argv, "--layout", "kohya"])
    assert [e["step"] for e in log(resumed)] == [3, 4]
    assert [e["loss"] for e in log(resumed)] == pytest.approx([e["loss"] for e in entries[2:]])
    kohya, kohya_metadata = safetensors_file(resumed / "lora_kohya.safetensors")
    assert kohya_metadata["mir.layout"] == "kohya" and kohya_metadata["mir.steps"] == "4"
    assert all(k.startswith("lora_unet_") for k in kohya)
    assert {k.rsplit(".", 2)[-2] for k in kohya if k.endswith(".weight")} == {
        "lora_down",
        "lora_up",
    }
    assert all(float(v) == 8.0 for k, v in kohya.items() if k.endswith(".alpha"))
    for key, value in tensors.items():
        module, part = key.removeprefix("unet.").rsplit(".lora.", 1)
        kind = "lora_down" if part.startswith("down") else "lora_up"
        torch_close(kohya[f"lora_unet_{module.replace('.', '_')}.{kind}.weight"], value)

    # (a) diffusers loads both files back, and the adapter changes the image the same way
    import numpy as np

    plain = np.asarray(image_with(workspace.pipeline, None), dtype=np.float32)
    adapted = np.asarray(image_with(workspace.pipeline, first / "pytorch_lora_weights.safetensors"))
    from_kohya = np.asarray(image_with(workspace.pipeline, resumed / "lora_kohya.safetensors"))
    assert np.abs(plain - adapted).max() > 0
    assert np.abs(adapted.astype(np.float32) - from_kohya).max() <= 1


def torch_close(a: Any, b: Any) -> None:
    import torch

    assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()


def test_two_processes_end_with_identical_weights(workspace: Workspace, tmp_path: Path) -> None:
    launcher = workspace.root / "generated" / FOLDER / "cpu_2.sh"
    output = tmp_path / "ddp"
    extra = ["--max-steps", "3", "--hooks", str(workspace.hooks)]
    torchrun = f"{sys.executable} -m torch.distributed.run"
    run_script(
        ["sh", str(launcher), *workspace.argv(output, *extra)], offline_env(TORCHRUN=torchrun)
    )
    ranks = [hook_record(output, rank) for rank in (0, 1)]
    assert ranks[0]["digest"] is not None and ranks[0]["digest"] == ranks[1]["digest"]
    assert all(r["fired"]["on_step_end"] == 3 for r in ranks)
    assert all(r["fired"]["on_loss"] == 3 for r in ranks)  # one micro-batch per process and step
    assert [e["step"] for e in log(output)] == [1, 2, 3]
    tensors, _ = safetensors_file(output / "pytorch_lora_weights.safetensors")
    assert any(v.any() for k, v in tensors.items() if k.endswith("lora.up.weight"))


def test_other_objectives_full_fine_tune_and_loss_hook(
    workspace: Workspace, tmp_path: Path
) -> None:
    script = load_script(workspace.script("cpu"))
    script.main(workspace.argv(tmp_path / "v", "--variant", "vpred", "--max-steps", "2"))
    _, metadata = safetensors_file(tmp_path / "v" / "pytorch_lora_weights.safetensors")
    assert metadata["modelspec.prediction_type"] == "v" and metadata["mir.variant"] == "vpred"
    assert all(math.isfinite(e["loss"]) for e in log(tmp_path / "v"))

    # on_loss's return value is what is trained: a zero loss leaves the B matrices at zero
    zero = ["--variant", "flow", "--max-steps", "2", "--hooks", str(workspace.zero_hooks)]
    script.main(workspace.argv(tmp_path / "flow", *zero))
    tensors, metadata = safetensors_file(tmp_path / "flow" / "pytorch_lora_weights.safetensors")
    assert metadata["modelspec.prediction_type"] == "flow"
    assert not any(v.any() for k, v in tensors.items() if k.endswith("lora.up.weight"))

    script.main(workspace.argv(tmp_path / "full", "--method", "full", "--max-steps", "2"))
    from diffusers import UNet2DConditionModel

    _, metadata = safetensors_file(
        tmp_path / "full" / "unet" / "diffusion_pytorch_model.safetensors"
    )
    assert metadata["mir.method"] == "full" and metadata["modelspec.architecture"] == "tiny-sd"
    tuned = UNet2DConditionModel.from_pretrained(tmp_path / "full" / "unet")
    original = UNet2DConditionModel.from_pretrained(workspace.pipeline / "unet")
    moved = [
        not a.equal(b)
        for a, b in zip(tuned.parameters(), original.parameters(), strict=True)
        if a.requires_grad
    ]
    assert any(moved)


def test_objective_targets(workspace: Workspace) -> None:
    """epsilon: the noise; v: α·noise − σ·x0; flow: noise − x0 at x_t = (1 − t)·x0 + t·noise."""
    import torch
    from diffusers import DDPMScheduler

    script = load_script(workspace.script("cpu"))
    scheduler = DDPMScheduler(num_train_timesteps=100)
    latents = torch.randn(3, 4, 4, 4)
    for objective in ("epsilon", "v-prediction", "sample", "flow-matching"):
        run = script.runtime.Run(
            None, None, {"hyperparameters": {"noise_offset": 0.0}}, {}, None, None, []
        )
        run.objective, run.noise_scheduler = objective, scheduler
        noisy, timesteps, target = script.runtime.noisy_latents(run, latents)
        if objective == "flow-matching":
            t = (timesteps / 100).view(-1, 1, 1, 1)
            noise = target + latents
            torch_close(noisy, (1 - t) * latents + t * noise)
            continue
        alpha = scheduler.alphas_cumprod[timesteps].sqrt().view(-1, 1, 1, 1)
        sigma = (1 - scheduler.alphas_cumprod[timesteps]).sqrt().view(-1, 1, 1, 1)
        noise = (noisy - alpha * latents) / sigma
        expected = {
            "epsilon": noise,
            "v-prediction": alpha * noise - sigma * latents,
            "sample": latents,
        }[objective]
        assert torch.allclose(target, expected, atol=1e-4)


def test_sdxl_conditioning(workspace: Workspace, tmp_path: Path) -> None:
    """Two text encoders, pooled embeddings and time ids; the objective read from the scheduler
    (the spec names none); the refiner variant (an img2img pipeline) is left out."""
    script = load_script(workspace.script("cpu", SDXL_FOLDER))
    assert list(script.SPEC["variants"]) == ["base"]
    assert script.SPEC["variants"]["base"]["conditioning"] == "clip-sdxl"
    argv = ["--source", str(workspace.sdxl_pipeline), "--data", str(workspace.data)]
    script.main([*argv, "--output", str(tmp_path), "--max-steps", "3"])
    assert all(math.isfinite(e["loss"]) for e in log(tmp_path))
    _, metadata = safetensors_file(tmp_path / "pytorch_lora_weights.safetensors")
    assert metadata["modelspec.prediction_type"] == "epsilon"
    assert metadata["mir.id"] == "mir:info.unet.tiny-sdxl:base"

    import numpy as np
    from diffusers import StableDiffusionXLPipeline
    from torch import Generator

    pipe = StableDiffusionXLPipeline.from_pretrained(workspace.sdxl_pipeline)
    pipe.set_progress_bar_config(disable=True)
    images = []
    for lora in (None, tmp_path / "pytorch_lora_weights.safetensors"):
        if lora is not None:
            pipe.load_lora_weights(str(lora))
        options = {"height": 32, "width": 32, "num_inference_steps": 2, "output_type": "np"}
        images.append(pipe("a red square", generator=Generator().manual_seed(0), **options))
    assert np.abs(images[0].images - images[1].images).max() > 0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_and_its_resume(
    workspace: Workspace, tmp_path: Path, precision: str
) -> None:
    """The CUDA targets' autocast paths (fp16 with a gradient scaler) also run on the CPU; a
    checkpoint carries the scaler, so resuming still ends where the whole run did."""
    script = load_script(workspace.script("cpu"))
    plan = script.SPEC["variants"]["base"]["methods"]["lora"]
    plan["mixed_precision"] = {"value": precision, "reason": "test"}
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    script.main(workspace.argv(whole, "--max-steps", "3", "--checkpoint-every", "2"))
    checkpoint = whole / "checkpoint-00000002"
    scaler = script.runtime.read_state(checkpoint, "training")["scaler"]
    assert bool(scaler) == (precision == "fp16") and scaler.get("scale", 1.0) > 0
    script.main(workspace.argv(resumed, "--max-steps", "3", "--resume", str(checkpoint)))
    assert [e["loss"] for e in log(resumed)] == [e["loss"] for e in log(whole)][2:]
    first, _ = safetensors_file(whole / "pytorch_lora_weights.safetensors")
    second, _ = safetensors_file(resumed / "pytorch_lora_weights.safetensors")
    assert all(first[k].equal(second[k]) for k in first)
    assert all(math.isfinite(e["loss"]) for e in log(whole))
