"""Memory estimates for inference and training, with the formulas written out.

Notation: P parameters, s bytes per value of the compute dtype, b batch, T tokens (latent pixels
per patch), h hidden size (a UNet: its base channel count), L layers (transformer blocks; a UNet:
its attention blocks), a attention heads.

Inference:
* weights: P × s for the network and for each component (text encoders, VAE);
* network activations, the working set of one block: b' × T × h × s × 12 (q, k, v, attention
  output, the 4h MLP and two residual copies), plus b' × a × T² × s for the attention scores when
  no memory-efficient attention kernel is available; b' = 2b under classifier-free guidance;
* VAE decode: b × H × W × 128 × s × 6 (the decoder's top level works at full image size with 128
  channels; about six such tensors are alive at once), with H × W capped at 512² when tiled;
* a fixed 0.5 GiB for the CUDA context and allocator slack.

Training (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", eq. 2): stored activations per layer T × b × h × (34 + 5 × a × T / h) bytes in 16-bit,
the second term dropping with flash attention; with gradient checkpointing only each layer's input
(2 × T × b × h bytes) is kept, plus one layer's activations while it is recomputed.
* full fine-tune with mixed precision and Adam: 16 bytes per parameter (fp32 master weights 4,
  gradients 4, Adam moments 8) — sharded over N devices by FSDP;
* LoRA: frozen weights P × s, plus 16 bytes per LoRA parameter, with
  LoRA parameters = L × (number of target modules) × 2 × r × h.

UNets are treated as a stack of L blocks at their first level's width and token count, which
over-estimates their activations (deeper levels have 4 × fewer tokens and 2 × the width); the plan
errs towards the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir import Dimensions

GIB = 2**30
CONTEXT_BYTES = GIB // 2
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1}
INFERENCE_WORKING_SET = 12
VAE_CHANNELS = 128
VAE_LIVE_TENSORS = 6
VAE_TILE = 512
ADAM_BYTES_PER_PARAM = 16
DEFAULT_LORA_MODULES = 4  # to_q, to_k, to_v, to_out


@dataclass(frozen=True)
class Workload:
    """What one generation or one training step processes."""

    height: int
    width: int
    batch: int = 1
    guidance: bool = True


def tokens(dims: Dimensions, work: Workload) -> int | None:
    """Latent tokens of one image, or None when the dimensions are unknown."""
    scale = dims.vae_scale_factor
    if scale is None:
        return None
    patch = dims.patch_size or 1
    return (work.height // scale // patch) * (work.width // scale // patch)


def weight_bytes(parameters: int, dtype: str) -> int:
    return parameters * DTYPE_BYTES[dtype]


def inference_activation_bytes(
    dims: Dimensions, work: Workload, dtype: str, memory_efficient_attention: bool
) -> int | None:
    """The largest working set of one network block during a denoising step."""
    count = tokens(dims, work)
    if count is None or dims.hidden_size is None:
        return None
    batch = work.batch * (2 if work.guidance else 1)
    size = DTYPE_BYTES[dtype]
    total = batch * count * dims.hidden_size * size * INFERENCE_WORKING_SET
    if not memory_efficient_attention:
        total += batch * (dims.heads or 1) * count * count * size
    return total


def vae_decode_bytes(work: Workload, dtype: str, tiled: bool) -> int:
    height = min(work.height, VAE_TILE) if tiled else work.height
    width = min(work.width, VAE_TILE) if tiled else work.width
    return work.batch * height * width * VAE_CHANNELS * DTYPE_BYTES[dtype] * VAE_LIVE_TENSORS


def training_activation_bytes(
    dims: Dimensions, work: Workload, flash: bool, checkpointing: bool, dtype: str
) -> int | None:
    """Stored activations of one micro-batch (Korthikanti et al. 2022, eq. 2)."""
    count = tokens(dims, work)
    if count is None or dims.hidden_size is None or dims.layers is None:
        return None
    hidden, layers, batch = dims.hidden_size, dims.layers, work.batch
    attention = 0 if flash else 5 * (dims.heads or 1) * count // hidden
    per_layer = count * batch * hidden * (34 + attention)
    scale = DTYPE_BYTES[dtype] / 2  # the formula counts 16-bit activations
    if checkpointing:
        return int((layers * 2 * count * batch * hidden + per_layer) * scale)
    return int(layers * per_layer * scale)


def lora_parameters(dims: Dimensions, rank: int, modules: int) -> int | None:
    if dims.hidden_size is None or dims.layers is None:
        return None
    return dims.layers * (modules or DEFAULT_LORA_MODULES) * 2 * rank * dims.hidden_size
