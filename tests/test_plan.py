"""The plan stage: memory formulas and the per-target decisions with their reasons."""

from __future__ import annotations

from compiler.diagnostics import Span
from compiler.ir import Dimensions, Target, Training
from compiler.plan import memory
from compiler.plan.inference import InferenceInput, plan_inference
from compiler.plan.memory import GIB, Workload
from compiler.plan.model import DOES_NOT_FIT, FITS, NEEDS_OFFLOAD, UNKNOWN, ParameterCounts
from compiler.plan.training import TrainingInput, plan_training

SPAN = Span("t.yaml", 1, 1)
DIT = Dimensions(
    hidden_size=3072, layers=57, heads=24, latent_channels=16, patch_size=2, vae_scale_factor=8
)


def target(
    name: str,
    memory_gib: float,
    dtypes: tuple[str, ...],
    cc: str = "8.0",
    devices: int = 1,
    nodes: int = 1,
    device: str = "cuda",
) -> Target:
    return Target(
        name,
        f"targets/{name}.yaml",
        SPAN,
        name,
        device,
        memory_gib,
        dtypes,
        ("sdpa",),
        devices,
        nodes,
        compute_capability=cc,
    )


T4 = target("t4", 16, ("fp32", "fp16"), "7.5")
H100 = target("h100", 80, ("fp32", "tf32", "fp16", "bf16", "fp8"), "9.0")
RTX3060 = target("rtx3060", 12, ("fp32", "tf32", "fp16", "bf16"), "8.6")
CPU = target("cpu", 32, ("fp32",), device="cpu")
EIGHT = target("8xh100", 80, H100.dtypes, "9.0", devices=8)


def flux_like(network: int = 11_901_408_320) -> InferenceInput:
    counts = ParameterCounts(
        network,
        (("text_encoder", 123_060_480), ("text_encoder_2", 4_762_310_656), ("vae", 83_819_683)),
    )
    return InferenceInput(counts, DIT, Workload(1024, 1024, 1, guidance=False))


def test_token_count_and_weight_bytes() -> None:
    assert memory.tokens(DIT, Workload(1024, 1024)) == 64 * 64
    assert memory.weight_bytes(1_000, "bf16") == 2_000
    assert memory.tokens(Dimensions(), Workload(512, 512)) is None


def test_korthikanti_formula() -> None:
    dims = Dimensions(hidden_size=1024, layers=10, heads=16, vae_scale_factor=8, patch_size=1)
    work = Workload(256, 256, batch=2, guidance=False)
    t = 32 * 32
    flash = memory.training_activation_bytes(dims, work, True, False, "bf16")
    assert flash == 10 * t * 2 * 1024 * 34
    math_attn = memory.training_activation_bytes(dims, work, False, False, "bf16")
    assert math_attn == 10 * t * 2 * 1024 * (34 + 5 * 16 * t // 1024)
    ckpt = memory.training_activation_bytes(dims, work, True, True, "bf16")
    assert ckpt == 10 * 2 * t * 2 * 1024 + t * 2 * 1024 * 34
    assert memory.training_activation_bytes(dims, work, True, False, "fp32") == 2 * flash


def test_big_gpu_runs_flux_whole_in_bf16_with_compile() -> None:
    plan = plan_inference(H100, flux_like())
    assert plan.dtype.value == "bf16" and plan.offload.value == "none" and plan.fit == FITS
    assert plan.compile.value is True and plan.tf32.value is True
    assert plan.memory is not None and 30 * GIB < plan.memory.total < 40 * GIB
    assert "fits in" in plan.offload.reason


def test_small_gpu_offloads_model_by_model() -> None:
    a4000 = target("a4000", 16, ("fp32", "tf32", "fp16", "bf16"), "8.6")
    plan = plan_inference(a4000, flux_like(network=3_000_000_000))
    assert plan.offload.value == "model" and plan.fit == NEEDS_OFFLOAD
    assert plan.compile.value is False and "offload" in plan.compile.reason
    assert plan.vae_tiling.value is True


def test_too_big_for_one_model_streams_layers() -> None:
    plan = plan_inference(RTX3060, flux_like())
    assert plan.offload.value == "sequential" and plan.fit == NEEDS_OFFLOAD


def test_t4_has_no_bf16_and_cpu_uses_fp32() -> None:
    t4 = plan_inference(T4, flux_like(1_000_000_000))
    assert t4.dtype.value == "fp16" and "no bf16" in t4.dtype.reason
    assert t4.compile.value is False and t4.tf32.value is False
    cpu = plan_inference(CPU, flux_like(1_000_000_000))
    assert cpu.dtype.value == "fp32" and cpu.offload.value == "none"


def test_unknown_parameters_give_unknown_fit() -> None:
    given = InferenceInput(ParameterCounts(None), DIT, Workload(512, 512))
    plan = plan_inference(H100, given)
    assert plan.fit == UNKNOWN and plan.memory is None


def training_input(network: int, methods: tuple[str, ...], batch: int = 32) -> TrainingInput:
    return TrainingInput(network, DIT, Training(methods=methods, batch_size=batch), 1024)


def test_full_finetune_on_eight_gpus_shards_with_fsdp() -> None:
    [full] = plan_training(EIGHT, training_input(11_901_408_320, ("full",)))
    assert full.strategy.value == "fsdp" and full.launcher.value == "torchrun"
    assert full.fit == FITS
    micro, accumulation = full.micro_batch.value, full.gradient_accumulation.value
    assert micro * accumulation * 8 >= 32


def test_lora_uses_ddp_and_accumulates_to_the_effective_batch() -> None:
    [lora] = plan_training(EIGHT, training_input(2_000_000_000, ("lora",), batch=64))
    assert lora.strategy.value == "ddp"
    assert lora.micro_batch.value * lora.gradient_accumulation.value * 8 >= 64


def test_checkpointing_only_when_needed() -> None:
    [small] = plan_training(H100, training_input(100_000_000, ("lora",), batch=1))
    assert small.gradient_checkpointing.value is False
    [big] = plan_training(RTX3060, training_input(2_000_000_000, ("lora",), batch=1))
    assert big.gradient_checkpointing.value is True
    assert "does not fit without it" in big.gradient_checkpointing.reason


def test_full_finetune_that_cannot_fit_says_so() -> None:
    [full] = plan_training(T4, training_input(11_901_408_320, ("full",)))
    assert full.fit == DOES_NOT_FIT and full.strategy.value == "none"
