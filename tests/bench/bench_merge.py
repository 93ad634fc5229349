"""``mirc merge`` against sd-mecha 1.1.8 and against a streaming floor, wall time and peak RSS.

Three synthetic float16 checkpoints with the full SD1.x original (ldm) layout, as the issue
asks: the keys and shapes of sd-mecha's ``sd1-ldm`` model config without the EMA copies (1,130
tensors, 2.1 GB a model; registered with sd-mecha as ``mircbench-sd1``). The registry's own
fingerprint of the family names only the keys that decide it, so it cannot give every key; the
benchmark checks instead that mirc identifies the file it wrote as that family, with the
fingerprint's tensor and parameter counts for the UNet. ``MIRC_BENCH_MERGE_SCALE=4`` divides
every dimension of 256 or more by 4 for a quick run (137 MB a model; no identification then, and
the fixed costs of starting a process weigh four times as much against the floor). Two recipes:
``weighted_sum`` of two models, and ``add_difference`` of three (``a + 0.7 (b - c)``). The full
run takes about five minutes, most of it sd-mecha's.

Every contender is a whole process, timed from its start to its exit by this one, with the peak
RSS and the CPU time the kernel reports for it (``wait4``): what a user waits for and pays in
memory, interpreter start-up and imports included.

- mirc: the real command, ``python -m compiler merge r.mecha -o OUT --threads 2`` (the machine's
  two cores), with the shipped registry (read to name the result's family);
- sd-mecha: a script that imports sd-mecha, registers the layout and runs ``sd_mecha.merge`` to
  a file (its default threads, float32 merge, float16 output);
- floor: a script that reads every input tensor once with positioned reads (into one reused
  buffer per thread: no allocation per tensor) and writes an output file of the same size at
  the tensors' offsets, then fsyncs it (no math, no torch) — what streaming costs at least. It
  runs three ways: in one thread flushing the output at the end, as a naive copy does; in one
  thread flushing it to disk every 32 MB from another thread while it copies, as mirc does;
  and that way in two copying threads (each every other tensor), as mirc reads with its two.
  Which is fastest depends on the disk and the recipe (on a slow disk, a flush of the whole
  file at the end is what a run waits for; three inputs are more reading than one thread does
  as fast as two); the target counts against the fastest of the three in the run.

Two more processes show the fixed costs inside those figures: the bare interpreter
(``python -c pass``, which the floor pays too) and the imports of ``mirc merge`` (its command
line and merge engine; numpy among them only where mirc's C extension does not run the
kernels). mirc keeps the registry's block fingerprints in a cache
(``MIRC_CACHE_DIR``, here a folder of the benchmark): its first run loads the registry and fills
it, the later ones read it, as a user's second merge does.

Each contender runs ``ROUNDS`` times, the contenders taking turns so that a busy spell of the
machine falls on all of them; the fastest run and the lowest peak count. Outputs are deleted
before each run, so that no run pays for truncating the last one's file.

    PYTHONPATH=$PWD python3 tests/bench/run.py merge
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCALE = int(os.environ.get("MIRC_BENCH_MERGE_SCALE", "1"))  # 1: the real SD1.x sizes (2.1 GB)
ROUNDS = int(os.environ.get("MIRC_BENCH_MERGE_ROUNDS", "3"))
SD1 = "mir:info.unet.stable-diffusion-v1"
CONFIG = "mircbench-sd1"
ROOT = Path(__file__).resolve().parents[2]
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

_SD_MECHA = (
    _LAYOUT
    + """
import logging, sys, torch, sd_mecha
from sd_mecha.extensions import model_configs
logging.disable(logging.WARNING)
folder = sys.argv[1]
keys = {k: {"shape": s, "dtype": "float16"} for k, s in layout().items()}
model_configs.register(model_configs.ModelConfigImpl("CONFIG_NAME", {"main": keys}))
text = open(f"{folder}/sd_mecha.mecha").read()
sd_mecha.merge(sd_mecha.deserialize(text.splitlines()), output=f"{folder}/out.safetensors",
               check_extra_keys=False, tqdm=__import__("tests.merge_support").merge_support._Quiet)
"""
).replace("CONFIG_NAME", CONFIG)

# argv: the folder, the input names, "end" (flush the output once, at the end, as a naive copy
# does) or "flushing" (also flush it every 32 MB from another thread, as mirc does), and the
# number of copying threads (each takes every n-th tensor and writes it at its offset).
_FLOOR = """
import os, sys, threading
from compiler.tensorfile import read_header
folder, names = sys.argv[1], sys.argv[2]
flushing, threads = sys.argv[3] == "flushing", int(sys.argv[4])
headers = [read_header(f"{folder}/{n}.safetensors") for n in names]
fds = [os.open(h.path, os.O_RDONLY) for h in headers]
out = os.open(f"{folder}/out.safetensors", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
keys = list(headers[0].tensors)
offsets, at = [], 0
for key in keys:
    offsets.append(at)
    at += headers[0].tensors[key].nbytes
largest = max(info.nbytes for info in headers[0].tensors.values())
written, wake, done = [0], threading.Condition(), [False]
def flush():
    while True:
        with wake:
            wake.wait_for(lambda: done[0] or written[0] >= 32 << 20)
            if done[0]:
                return
            written[0] = 0
        os.fdatasync(out)
def copy(part):
    buffer = memoryview(bytearray(largest))  # one per thread, reused: no allocation per tensor
    for i in range(part, len(keys), threads):
        for fd, header in zip(fds, headers):
            begin, end = header.tensors[keys[i]].data_offsets
            data = buffer[: end - begin]
            os.preadv(fd, [data], header.data_start + begin)
        os.pwrite(out, data, offsets[i])
        if flushing:
            with wake:
                written[0] += len(data)
                wake.notify()
flusher = threading.Thread(target=flush)
if flushing:
    flusher.start()
copiers = [threading.Thread(target=copy, args=(part,)) for part in range(threads)]
for copier in copiers:
    copier.start()
for copier in copiers:
    copier.join()
if flushing:
    with wake:
        done[0] = True
        wake.notify()
    flusher.join()
os.fsync(out)
"""


_IMPORTS = "import compiler.cli.merge_cmd, compiler.merge.engine"  # what mirc merge imports


# Times one contender from a small process of its own. Linux counts a child's peak RSS from
# the memory of the process that started it (kept across exec), so a contender started by this
# one, grown by the identify check or by other benchmarks run before, would report this
# process's size. The launcher prints the contender's wall time, CPU time and peak RSS.
_LAUNCH = """
import json, os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
rss = usage.ru_maxrss * 1024
print(json.dumps({"code": code, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": rss}))
"""


def _process(argv: list[str], folder: Path) -> dict[str, float]:
    """One whole process: its wall time from start to exit, CPU time and peak RSS in bytes."""
    (folder / "out.safetensors").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MIRC_CACHE_DIR": str(folder / "cache")}
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCH, *argv],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(launched.stdout)
    if figures.pop("code") != 0:
        raise RuntimeError(f"{argv[:4]} failed")
    return figures


def _contenders(folder: Path, text: str) -> dict[str, list[str]]:
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
    python = sys.executable
    mirc = [python, "-m", "compiler", "merge", "r.mecha", "-o", "out.safetensors"]
    return {
        "mirc": [*mirc, "--threads", "2"],
        "sd-mecha": [python, "-c", _SD_MECHA, str(folder)],
        "floor": [python, "-c", _FLOOR, str(folder), models, "end", "1"],
        "floor flushing": [python, "-c", _FLOOR, str(folder), models, "flushing", "1"],
        "floor 2 threads": [python, "-c", _FLOOR, str(folder), models, "flushing", "2"],
        "python": [python, "-c", "pass"],
        "imports": [python, "-c", _IMPORTS],
    }


def _best(folder: Path, contenders: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Each contender's fastest of ``ROUNDS`` runs (with its CPU time) and lowest peak RSS,
    the contenders taking turns."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, argv in contenders.items():
            runs[name].append(_process(argv, folder))
    best = {name: min(got, key=lambda r: r["wall"]) for name, got in runs.items()}
    return {name: {**best[name], "rss": min(r["rss"] for r in got)} for name, got in runs.items()}


def run() -> list[str]:
    """Write the checkpoints, run every contender on both recipes, return the report lines."""
    with tempfile.TemporaryDirectory(prefix="mirc-bench-merge-") as name:
        folder = Path(name)
        subprocess.run([sys.executable, "-c", _WRITE, str(folder)], check=True)
        size = (folder / "a.safetensors").stat().st_size
        scaled = f"scaled 1/{SCALE} per large dimension" if SCALE != 1 else _family(folder)
        lines = [
            f"merge: SD1.x ldm layout {scaled}, {size / 1e6:.0f} MB per model; "
            f"whole processes, best of {ROUNDS}; {_kernels()}"
        ]
        for recipe, text in RECIPES.items():
            got = _best(folder, _contenders(folder, text))
            mirc, mecha = got["mirc"], got["sd-mecha"]
            floors = [got["floor"], got["floor flushing"], got["floor 2 threads"]]
            floor = min(floors, key=lambda run: run["wall"])
            lines.append(
                f"  {recipe}: mirc {_figures(mirc)}; sd-mecha {_figures(mecha)}; "
                f"floor {_figures(got['floor'])}, flushing as it writes "
                f"{_figures(got['floor flushing'])}, and in 2 threads "
                f"{_figures(got['floor 2 threads'])}"
            )
            lines.append(
                f"    wall: {mirc['wall'] / mecha['wall']:.2f}x sd-mecha (target <= 0.8), "
                f"{mirc['wall'] / floor['wall']:.2f}x the faster floor (target <= 1.3); "
                f"peak RSS: {mirc['rss'] / mecha['rss']:.2f}x sd-mecha (target <= 1.0), "
                f"{mirc['rss'] / floor['rss']:.2f}x floor"
            )
            python, imports = got["python"]["wall"], got["imports"]["wall"]
            lines.append(
                f"    start-up inside these: interpreter {python:.3f} s (floor too), "
                f"+{imports - python:.3f} s mirc merge's imports = "
                f"{(imports - python) / floor['wall']:.2f}x floor"
            )
        return lines


def _kernels() -> str:
    """What mirc's elementwise engine computes with: its C extension, or numpy."""
    from compiler.merge import elementwise

    if elementwise.FUSED:
        return "mirc runs its kernels in C (F16C, FMA: its C extension)"
    if elementwise.NATIVE_FMA:
        return "mirc runs its kernels in numpy, with the C extension's FMA (no AVX2/F16C here)"
    return "mirc runs its kernels in numpy alone (installed without its C extension)"


def _family(folder: Path) -> str:
    """Check that the synthetic checkpoint is the registry's SD1 family by mirc's identify: its
    UNet matches the fingerprint, with the tensor and parameter counts the fingerprint gives."""
    from compiler.identify import candidates, identify_file
    from compiler.registry import check_registry
    from compiler.tensorfile import read_header

    linked = check_registry(ROOT / "spec").linked
    assert linked is not None
    path = folder / "a.safetensors"
    found = identify_file(path, candidates(linked)).components
    unet = next(f.best for f in found if f.best.candidate.mir == SD1)
    infos = read_header(path).tensors.items()
    sizes = [info.nbytes // 2 for key, info in infos if key.startswith(unet.region)]
    expected = unet.candidate.fingerprint
    assert (len(sizes), sum(sizes)) == (expected.tensors, expected.parameters), len(sizes)
    return f"identified as {SD1} (UNet: {len(sizes)} tensors, {sum(sizes):,} parameters)"


def _figures(run: dict[str, float]) -> str:
    return f"{run['wall']:.2f} s ({run['cpu']:.2f} s CPU), {run['rss'] / 1e6:.0f} MB peak"
