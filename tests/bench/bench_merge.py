"""``mirc merge`` against sd-mecha 1.1.8 and against a streaming floor, wall time and peak RSS.

Three synthetic float16 checkpoints with the SD1.x original (ldm) layout: the keys of sd-mecha's
``sd1-ldm`` model config without the EMA copies, every dimension of 256 or more divided by
``SCALE`` (4) so that a run takes about a minute (~1,140 tensors, ~110 MB a model; the same
scaled layout is registered with sd-mecha as ``mircbench-sd1``). Two recipes: ``weighted_sum``
of two models, and ``add_difference`` of three (a + (b - c)). Each contender runs in its own
subprocess, which reports its wall time and ``ru_maxrss``; the best of three runs counts:

- mirc: ``merge_recipe`` with two threads (the machine's cores);
- sd-mecha: ``sd_mecha.merge`` to a file, its default threads, fp32 merge, fp16 output;
- floor: read every input tensor once with positioned reads and write an output of the same
  size (no math, no torch) — what streaming costs at least.

    PYTHONPATH=$PWD python3 -c 'from tests.bench.bench_merge import run; print(*run(), sep="\\n")'
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SCALE = 4
ROUNDS = 3
CONFIG = "mircbench-sd1"
RECIPES = {
    "weighted_sum": 'model "a"\nmodel "b"\nmerge "weighted_sum" &0 &1 alpha=0.3',
    "add_difference": (
        'model "a"\nmodel "b"\nmodel "c"\nmerge "subtract" &1 &2\n'
        'merge "add_difference" &0 &3 alpha=0.7'
    ),
}

_LAYOUT = (
    """
from sd_mecha.extensions import model_configs
SCALE = SCALE_VALUE
def layout():
    config = model_configs.resolve("sd1-ldm")
    shapes = {}
    for key, meta in config.keys().items():
        if key.startswith("model_ema.") or meta.optional:
            continue
        shapes[key] = [d // SCALE if d >= 256 else d for d in meta.shape]
    return shapes
"""
).replace("SCALE_VALUE", str(SCALE))

_WRITE = (
    _LAYOUT
    + """
import sys, torch, safetensors.torch
folder = sys.argv[1]
g = torch.Generator().manual_seed(0)
for name in "abc":
    tensors = {k: torch.randn(s, generator=g).to(torch.float16) for k, s in layout().items()}
    safetensors.torch.save_file(tensors, f"{folder}/{name}.safetensors")
"""
)

_MEASURE = """
import json, resource, sys, time
def report(start):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"wall": time.perf_counter() - start, "rss": rss}))
"""

_MIRC = (
    _MEASURE
    + """
from pathlib import Path
from compiler.merge.engine import MergeOptions, merge_recipe
folder = Path(sys.argv[1])
start = time.perf_counter()
merge_recipe(MergeOptions(folder / "r.mecha", folder / "mirc.safetensors", threads=2))
report(start)
"""
)

_SD_MECHA = (
    _MEASURE
    + _LAYOUT
    + """
import logging, torch, sd_mecha
from sd_mecha.extensions import model_configs
logging.disable(logging.WARNING)
folder = sys.argv[1]
keys = {k: {"shape": s, "dtype": "float16"} for k, s in layout().items()}
model_configs.register(model_configs.ModelConfigImpl("CONFIG_NAME", {"main": keys}))
text = open(f"{folder}/sd_mecha.mecha").read()
start = time.perf_counter()
sd_mecha.merge(sd_mecha.deserialize(text.splitlines()), output=f"{folder}/sd_mecha.safetensors",
               check_extra_keys=False, tqdm=__import__("tests.merge_support").merge_support._Quiet)
report(start)
"""
).replace("CONFIG_NAME", CONFIG)

_FLOOR = (
    _MEASURE
    + """
import os
from compiler.tensorfile import read_header
folder, names = sys.argv[1], sys.argv[2]
start = time.perf_counter()
headers = [read_header(f"{folder}/{n}.safetensors") for n in names]
fds = [os.open(h.path, os.O_RDONLY) for h in headers]
out = os.open(f"{folder}/floor.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
for key, info in headers[0].tensors.items():
    for fd, header in zip(fds, headers):
        begin, end = header.tensors[key].data_offsets
        data = os.pread(fd, end - begin, header.data_start + begin)
    os.write(out, data)
os.fsync(out)
report(start)
"""
)


def _python(code: str, *argv: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}  # type: ignore[no-any-return]


def _contenders(folder: Path, name: str, text: str) -> dict[str, dict[str, float]]:
    from compiler.lang.mecha import format_recipe, parse_recipe

    (folder / "r.mecha").write_text(text, encoding="utf-8")
    canonical = format_recipe(parse_recipe(text))
    for model in "abc":
        spelled = (
            f'model "{folder / model}.safetensors" model_config="{CONFIG}" merge_space="weight"'
        )
        canonical = canonical.replace(f'model "{model}"', spelled)
    (folder / "sd_mecha.mecha").write_text(canonical, encoding="utf-8")
    models = "".join(sorted(set("abc") & set(text.split('"'))))
    return {
        "mirc": _best(_MIRC, str(folder)),
        "sd-mecha": _best(_SD_MECHA, str(folder)),
        "floor": _best(_FLOOR, str(folder), models),
    }


def _best(code: str, *argv: str) -> dict[str, float]:
    """The fastest of ``ROUNDS`` runs (each in a fresh process) and the lowest peak RSS."""
    runs = [_python(code, *argv) for _ in range(ROUNDS)]
    return {"wall": min(r["wall"] for r in runs), "rss": min(r["rss"] for r in runs)}


def run() -> list[str]:
    """Write the checkpoints, run every contender on both recipes, return the report lines."""
    with tempfile.TemporaryDirectory(prefix="mirc-bench-merge-") as name:
        folder = Path(name)
        _python(_WRITE, str(folder))
        size = (folder / "a.safetensors").stat().st_size
        scaled = f"scaled 1/{SCALE} per large dimension"
        lines = [f"merge: SD1.x ldm layout {scaled}, {size / 1e6:.0f} MB per model"]
        for recipe, text in RECIPES.items():
            got = _contenders(folder, recipe, text)
            mirc, mecha, floor = got["mirc"], got["sd-mecha"], got["floor"]
            lines.append(
                f"  {recipe}: mirc {mirc['wall']:.2f} s, {mirc['rss'] / 1e6:.0f} MB peak; "
                f"sd-mecha {mecha['wall']:.2f} s, {mecha['rss'] / 1e6:.0f} MB; "
                f"floor {floor['wall']:.2f} s, {floor['rss'] / 1e6:.0f} MB"
            )
            lines.append(
                f"    wall: {mirc['wall'] / mecha['wall']:.2f}x sd-mecha (target <= 0.8), "
                f"{mirc['wall'] / floor['wall']:.2f}x floor (target <= 1.3); "
                f"peak RSS: {mirc['rss'] / mecha['rss']:.2f}x sd-mecha (target <= 1.0)"
            )
        return lines
