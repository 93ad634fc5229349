"""The elementwise engine of ``mirc merge``: torch's bits without torch, and when it runs."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from array import array
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from compiler.merge import elementwise, methods, numpy_kernels
from compiler.merge.engine import MergeOptions, merge_recipe, plan_merge
from compiler.merge.keyed import keyed_merge
from compiler.merge.output import OutputFile
from tests.merge_support import parts_family, write_models

AB = 'model "a"\nmodel "b"\n'
ABC = AB + 'model "c"\n'
WEIGHTS = (0.0, 1.0, 0.3, 0.5, 0.7, -0.2, 1.5, 2.5, 1e-8)
RECIPES = {
    "weighted_sum": AB + 'merge "weighted_sum" &0 &1 alpha=0.3',
    "weighted_sum_heavy": AB + 'merge "weighted_sum" &0 &1 alpha=0.8',
    "weighted_sum_beyond_float32": AB + 'merge "weighted_sum" &0 &1 alpha=1e39',
    "add_difference": ABC + 'merge "subtract" &1 &2\nmerge "add_difference" &0 &3 alpha=0.7',
    "n_average": ABC + 'merge "n_average" &0 &1 &2',
    "scale": AB + 'merge "subtract" &0 &1\nmerge "scale" &2 alpha=0.3',
}


def _float16_values(count: int, seed: int) -> np.ndarray:
    """float16 bit patterns of every kind: normal weights, subnormals, large, inf, NaN, ±0."""
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal(count) * 0.05).astype(np.float16)
    values[::7] = (rng.standard_normal(len(values[::7])) * 1e-5).astype(np.float16)
    values[::11] = (rng.standard_normal(len(values[::11])) * 2e4).clip(-6e4, 6e4).astype(np.float16)
    bits = values.view(np.uint16)
    bits[::97] = rng.integers(0, 1 << 16, len(bits[::97]), dtype=np.uint16)  # NaNs, infinities
    bits[5], bits[6] = 0x0000, 0x8000
    bits[7], bits[8] = 0x7E01 + seed, 0xFC02 + seed  # NaNs in every model, payloads their own
    return values


def _torch(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(values.copy())


def _cpu_runs_the_fused_kernels() -> bool:
    if platform.machine() not in {"x86_64", "AMD64"}:
        return False
    flags = Path("/proc/cpuinfo").read_text().split()
    return all(flag in flags for flag in ("avx2", "fma", "f16c"))


ENGINES = ["fused", "numpy", "numpy float64"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Kernels run by the C extension's fused loop; then by numpy with the extension's fma;
    then by numpy alone (float64 products), as an install without a C compiler runs them."""
    fused, native_fma = request.param == "fused", request.param != "numpy float64"
    if (fused and not elementwise.FUSED) or (native_fma and not elementwise.NATIVE_FMA):
        assert not (shutil.which("cc") and _cpu_runs_the_fused_kernels())  # see the next test
        pytest.skip(f"mirc's C extension cannot run {request.param!r} kernels here")
    monkeypatch.setattr(elementwise, "FUSED", fused)
    monkeypatch.setattr(elementwise, "NATIVE_FMA", native_fma)
    return str(request.param)


def test_the_c_extension_is_built_where_it_can_be() -> None:
    """An install with a C compiler builds the extension (its source compiles without a
    warning); on an x86-64 CPU with AVX2, FMA and F16C, its fused kernels run the merges."""
    cc = shutil.which("cc")
    assert not elementwise.STALE, "the extension is from another mirc: reinstall (pip install -e)"
    assert elementwise.FUSED is (cc is not None and _cpu_runs_the_fused_kernels())
    if cc is not None:
        assert elementwise.NATIVE_FMA
        include = sysconfig.get_paths()["include"]
        source = Path(elementwise.__file__).with_name("_kernels.c")
        flags = ["-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-std=c11", "-pedantic"]
        done = subprocess.run(
            [cc, *flags, f"-I{include}", str(source)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr


def _run(kernel: elementwise.Kernel, inputs: list[np.ndarray], count: int) -> np.ndarray:
    """The stored bytes ``kernel`` gives for ``inputs``, by the engine the fixture chose."""
    raws = [memoryview(np.ascontiguousarray(values)).cast("B") for values in inputs]
    out = memoryview(bytearray(4 * count))
    if elementwise.FUSED:
        data = elementwise.evaluate(kernel, raws, count, out)
    else:
        space = numpy_kernels.Workspace(kernel.registers, count)
        data = numpy_kernels.execute(kernel, raws, count, out, space)
    return np.frombuffer(bytes(data), np.uint8)


def _conversion(load: str, store: str) -> elementwise.Kernel:
    builder = elementwise.Builder()
    return builder.store(builder.load(load), store)


def test_every_float16_widens_as_torch_does(engine: str) -> None:
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    ours = _run(_conversion("F16", "F32"), [bits], len(bits)).view(np.float32)
    theirs = torch.from_numpy(bits.view(np.int16)).view(torch.float16).float().numpy()
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))


def test_bfloat16_and_float64_widen_as_torch_does(engine: str) -> None:
    rng = np.random.default_rng(3)
    halves = rng.integers(0, 1 << 16, 4099, dtype=np.uint16)
    ours = _run(_conversion("BF16", "F32"), [halves], 4099).view(np.float32)
    theirs = torch.from_numpy(halves.view(np.int16)).view(torch.bfloat16).float().numpy()
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))
    doubles = rng.standard_normal(4099) * 10.0 ** rng.integers(-50, 50, 4099)
    with np.errstate(over="ignore"):
        ours = _run(_conversion("F64", "F32"), [doubles], 4099).view(np.float32)
    assert np.array_equal(ours, torch.from_numpy(doubles).float().numpy())


@pytest.mark.parametrize("kind", ["random bits", "weights", "half subnormals", "rounding to inf"])
def test_float32_narrows_to_float16_as_torch_does(kind: str, engine: str) -> None:
    rng = np.random.default_rng(1)
    count = (1 << 18) + 5  # and a tail shorter than a vector
    if kind == "random bits":  # every exponent, NaNs with payloads, infinities
        words = rng.integers(0, 1 << 32, count, dtype=np.uint64).astype(np.uint32)
    elif kind == "weights":
        words = (rng.standard_normal(count) * 0.05).astype(np.float32).view(np.uint32)
    elif kind == "half subnormals":  # around 2**-24 … 2**-14, ties included
        words = np.arange(0x33000000, 0x33000000 + count * 0x40, 0x40, dtype=np.uint32)
    else:  # 65504 … 65520 … 131072, ties included
        words = np.arange(0x477F0000, 0x477F0000 + count, dtype=np.uint32)
    values = words.view(np.float32)
    with np.errstate(all="ignore"):
        got = _run(_conversion("F32", "F16"), [values], count).view(np.uint16)
    theirs = torch.from_numpy(values.copy()).half().view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(got, theirs)


def test_the_native_fma_rounds_once_where_float64_products_round_twice(engine: str) -> None:
    """x * y + z = 1 + 2**-24 + 4688 * 2**-70: float64 rounds it to 1 + 2**-24, halfway between
    two float32 values, and then to even (1.0); torch's one rounding gives 1 + 2**-23."""
    x = np.full(40, (1 + 2896 * 2**-23) * 2**-24, np.float32)  # 40: vectors and a tail
    y, z = np.float32(1 - 2895 * 2**-23), np.ones(40, np.float32)
    builder = elementwise.Builder()
    kernel = builder.store(builder.fma(builder.load("F32"), y, builder.load("F32")), "F32")
    ours = _run(kernel, [x, z], 40).view(np.float32)
    theirs = torch.from_numpy(z).addcmul(torch.from_numpy(x), torch.tensor(y)).numpy()
    assert set(theirs.tolist()) == {1 + 2**-23}
    assert np.array_equal(ours, theirs) == (engine != "numpy float64")


def test_weights_are_rounded_to_float32_as_numpy_and_torch_round_them() -> None:
    for value in (0.1, 1 / 3, -2.5e-45, 1e-46, 3.4028235e38, 3.4028235677973366e38, 1e39, -1e39):
        with np.errstate(over="ignore"):
            expected = float(np.float32(value))
        assert elementwise.float32(value) == expected
        assert elementwise.float32(value) == torch.tensor(value, dtype=torch.float32).item()
    assert elementwise.float32(10**400) == math.inf and elementwise.float32(-(10**400)) == -math.inf
    assert math.isnan(elementwise.float32(math.nan))


def test_fma_of_zero_by_infinity_plus_a_nan_is_that_nan(engine: str) -> None:
    """add_difference with alpha beyond float32 (inf): where b is 0 and a is a NaN, torch's
    fma gives a's NaN; a float64 product 0 * inf is a NaN of its own that the sum would keep."""
    x = np.zeros(40, np.float32)
    x[1::4], x[2::4] = np.inf, 1.0
    z = np.ones(40, np.float32)
    z.view(np.uint32)[::2] = np.arange(20, dtype=np.uint32) | 0x7F800001  # NaNs, some signalling
    for y in (elementwise.float32(1e39), -math.inf, 0.0, math.nan):
        builder = elementwise.Builder()
        kernel = builder.store(builder.fma(builder.load("F32"), y, builder.load("F32")), "F32")
        with np.errstate(all="ignore"):
            ours = _run(kernel, [x, z], 40).view(np.uint32)
        theirs = torch.from_numpy(z).addcmul(torch.from_numpy(x), torch.tensor(y)).numpy()
        assert np.array_equal(ours, theirs.view(np.uint32)), y


def _code(*instructions: tuple[int, int, int, int, int]) -> bytes:
    return array("i", [value for instruction in instructions for value in instruction]).tobytes()


def test_the_c_extension_refuses_kernels_and_buffers_that_do_not_match() -> None:
    if not elementwise.FUSED:
        pytest.skip("mirc's C extension cannot run fused kernels here")
    from compiler.merge import _kernels
    from compiler.merge.elementwise import Op

    load, store = (Op.LOAD_F16, 0, 0, 0, 0), (Op.STORE_F16, 0, 0, 0, 0)
    halves, out = np.zeros(10, np.uint16), np.zeros(10, np.uint16)
    _kernels.evaluate(_code(load, store), b"", (halves.data,), out.data, 10)
    malformed = [
        (_code((99, 0, 0, 0, 0), store), "instruction 0 of the program is malformed"),
        (_code(store, load), "instruction 0 of the program is malformed"),  # a store not last
        (_code((Op.LOAD_F16, 32, 0, 0, 0), store), "instruction 0"),  # no register 32
        (_code((Op.LOAD_F16, 0, 1, 0, 0), store), "instruction 0"),  # no input 1
        (_code(load, (Op.MUL, 1, 0, 0, 0), store), "instruction 1"),  # no constant 0
        (_code(load, (Op.LOAD_F32, 1, 0, 0, 0), store), "instruction 1"),  # input 0 read twice
        (_code(load, (Op.SUB, 1, 0, 5, 0), store), "instruction 1"),  # register 5 never written
        (_code(load, (Op.STORE_F16, 0, 3, 0, 0)), "instruction 1"),  # stores register 3
        (b"", "the program is empty"),
        (b"\0" * 7, "bad sizes"),
        (_code(*[load] * 257, store), "bad sizes"),  # more instructions than the C loop takes
    ]
    for code, message in malformed:
        with pytest.raises(ValueError, match=message):
            _kernels.evaluate(code, b"", (halves.data,), out.data, 10)
    with pytest.raises(ValueError, match="input 1 is not read by the program"):
        _kernels.evaluate(_code(load, store), b"", (halves.data, halves.data), out.data, 10)
    with pytest.raises(ValueError, match="input 0 holds fewer than 11 elements"):
        _kernels.evaluate(_code(load, store), b"", (halves.data,), np.zeros(11, np.uint16), 11)
    for count in (2**62, 2**62 + 4, 2**63 - 1):  # count * width would wrap around
        with pytest.raises(ValueError, match="input 0 holds fewer than"):
            _kernels.evaluate(_code(load, store), b"", (halves.data,), out.data, count)
    with pytest.raises(ValueError, match="the output holds fewer than 10 elements"):
        _kernels.evaluate(_code(load, store), b"", (halves.data,), np.zeros(9, np.uint16), 10)
    with pytest.raises(TypeError):
        _kernels.evaluate(_code(load, store), b"", (halves.data,), bytes(20), 10)  # read-only
    with pytest.raises(TypeError):
        _kernels.evaluate(_code(load, store), b"", (halves.data, 3), out.data, 10)
    with pytest.raises(ValueError, match="not float32 arrays of one length"):
        _kernels.fma(np.zeros(4, np.float32), 2.0, np.zeros(3, np.float32), out.data)


def test_an_extension_from_an_older_mirc_is_not_used(tmp_path: Path) -> None:
    """An editable install's extension outlives a checkout of newer source (it is not in git):
    with another ABI, mirc merge says so and merges in numpy."""
    write_models(tmp_path, "ab")
    (tmp_path / "r.mecha").write_text(RECIPES["weighted_sum"], encoding="utf-8")
    code = (
        "import sys, types; old = types.ModuleType('compiler.merge._kernels'); "
        "old.f16c = lambda: True; sys.modules['compiler.merge._kernels'] = old; "
        "from compiler.cli import main; from compiler.merge import elementwise; "
        "assert elementwise.STALE and not elementwise.FUSED and not elementwise.NATIVE_FMA; "
        "sys.exit(main(['merge', 'r.mecha', '-o', 'old.safetensors']))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "C extension was built from another version of mirc and is not used" in done.stderr
    merge_recipe(MergeOptions(tmp_path / "r.mecha", tmp_path / "new.safetensors"))
    old, new = (
        safetensors.torch.load_file(str(tmp_path / f"{n}.safetensors")) for n in ("old", "new")
    )
    assert all(torch.equal(old[key], new[key]) for key in new)


@pytest.mark.parametrize("method", sorted(elementwise.ELEMENTWISE))
@pytest.mark.parametrize("alpha", WEIGHTS)
def test_elementwise_methods_give_torch_bits(method: str, alpha: float, engine: str) -> None:
    count = 50_003  # not a multiple of any vector width: torch's scalar tail is checked too
    a, b, c = (_float16_values(count, seed).astype(np.float32) for seed in (1, 2, 3))
    builder = elementwise.Builder()
    ra, rb, rc = (builder.load("F32") for _ in range(3))
    args: dict[str, elementwise.Value] = {"a": ra, "b": rb, "alpha": elementwise.float32(alpha)}
    torch_args: dict[str, object] = {
        "a": _torch(a),
        "b": _torch(b),
        "alpha": torch.tensor(alpha, dtype=torch.float32),
    }
    if method == "n_average":
        args = {"models": (ra, rb, rc)}
        torch_args = {"models": (_torch(a), _torch(b), _torch(c))}
    kernel = builder.store(elementwise.ELEMENTWISE[method](args, builder), "F32")
    with np.errstate(all="ignore"):
        ours = _run(kernel, [a, b, c], count)
    theirs = methods.METHODS[method](torch_args)
    assert theirs is not None
    assert np.array_equal(ours.view(np.uint32), theirs.numpy().view(np.uint32))


def _write_mixed(folder: Path) -> None:
    """Models with float16, bfloat16 and float32 keys, some empty, with awkward values."""
    generator = torch.Generator().manual_seed(5)
    for index, name in enumerate("abc"):
        half = torch.from_numpy(_float16_values(70_001, index).view(np.int16)).view(torch.float16)
        tensors = {
            "big": half.reshape(70_001, 1),
            "brain.float": torch.randn(333, 3, generator=generator).to(torch.bfloat16),
            "empty": torch.zeros(0, 4, dtype=torch.float16),
            "full": torch.randn(17, generator=generator) * 1e3,
            "norm": torch.randn((), generator=generator).to(torch.float16),
        }
        safetensors.torch.save_file(tensors, str(folder / f"{name}.safetensors"))


def _keyed(options: MergeOptions) -> None:
    """The same merge through the torch engine."""
    plan = dataclasses.replace(plan_merge(options), runs=None)
    fds = {i: os.open(m.header.path, os.O_RDONLY) for i, m in plan.inputs.items()}
    out = OutputFile(options.output, plan.layout)
    try:
        keyed_merge(plan, options, fds, out)
        out.commit()
    finally:
        for fd in fds.values():
            os.close(fd)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_both_engines_write_the_same_bytes(
    recipe: str, dtype: str, engine: str, tmp_path: Path
) -> None:
    _write_mixed(tmp_path)
    (tmp_path / "r.mecha").write_text(RECIPES[recipe], encoding="utf-8")
    numpy_out, torch_out = tmp_path / "numpy.safetensors", tmp_path / "torch.safetensors"
    options = MergeOptions(tmp_path / "r.mecha", numpy_out, threads=3, dtype=dtype)
    assert plan_merge(options).runs is not None
    merge_recipe(options)
    _keyed(dataclasses.replace(options, output=torch_out))
    numpy_bytes, torch_bytes = numpy_out.read_bytes(), torch_out.read_bytes()
    title = b'"modelspec.title":"'
    assert numpy_bytes.replace(title + b"numpy", title + b"torch") == torch_bytes


def test_a_nan_in_a_tensors_last_elements_stays_a_nan_in_both_engines(tmp_path: Path) -> None:
    """torch's scalar loop over a tensor's last elements writes NaNs as 0x7FFF; mirc keeps the
    payload there as everywhere else (the vector instructions' NaN): the bits may differ, the
    NaN does not."""
    for name, seed in (("a", 1), ("b", 2)):
        bits = _float16_values(16, seed)[:7].view(np.uint16)
        bits[6] = 0x7E55  # a NaN with a payload, in the last, scalar, elements
        tensor = torch.from_numpy(bits.view(np.int16).copy()).view(torch.float16)
        safetensors.torch.save_file({"t": tensor}, str(tmp_path / f"{name}.safetensors"))
    (tmp_path / "r.mecha").write_text(RECIPES["weighted_sum"], encoding="utf-8")
    options = MergeOptions(tmp_path / "r.mecha", tmp_path / "numpy.safetensors")
    assert plan_merge(options).runs is not None
    merge_recipe(options)
    _keyed(dataclasses.replace(options, output=tmp_path / "torch.safetensors"))
    ours, theirs = (
        safetensors.torch.load_file(str(tmp_path / f"{n}.safetensors"))["t"].view(torch.int16)
        for n in ("numpy", "torch")
    )
    assert torch.equal(ours[:6], theirs[:6])
    assert ours[6].item() & 0x7FFF > 0x7C00 and theirs[6].item() & 0x7FFF > 0x7C00  # NaNs


def test_a_kernel_too_large_for_the_c_loop_runs_in_numpy(tmp_path: Path) -> None:
    """n_average of 17 models needs 49 registers, more than the C loop has (32)."""
    names = "abcdefghijklmnopq"
    write_models(tmp_path, names)
    models = "".join(f'model "{name}"\n' for name in names)
    average = 'merge "n_average" ' + " ".join(f"&{i}" for i in range(len(names)))
    (tmp_path / "r.mecha").write_text(models + average, encoding="utf-8")
    options = MergeOptions(tmp_path / "r.mecha", tmp_path / "numpy.safetensors", threads=2)
    runs = plan_merge(options).runs
    assert runs is not None and runs[0].kernel.registers > elementwise.MAX_REGISTERS
    merge_recipe(options)
    _keyed(dataclasses.replace(options, output=tmp_path / "torch.safetensors"))
    ours = safetensors.torch.load_file(str(tmp_path / "numpy.safetensors"))
    theirs = safetensors.torch.load_file(str(tmp_path / "torch.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def test_the_numpy_engine_streams_runs_in_small_chunks(tmp_path: Path) -> None:
    write_models(tmp_path, "ab")
    (tmp_path / "r.mecha").write_text(RECIPES["weighted_sum"], encoding="utf-8")
    plan = plan_merge(MergeOptions(tmp_path / "r.mecha", tmp_path / "o.safetensors"))
    assert plan.runs is not None and len(plan.runs) == 1  # one serializer: one stream of bytes
    assert plan.runs[0].count == sum(t.nbytes for t in plan.layout.tensors) // 2
    seen: list[tuple[int, int]] = []
    merge_recipe(
        MergeOptions(
            tmp_path / "r.mecha",
            tmp_path / "o.safetensors",
            progress=lambda keys, nbytes: seen.append((keys, nbytes)),
        )
    )
    assert sum(k for k, _ in seen) == len(plan.layout.tensors)
    assert sum(n for _, n in seen) == plan.layout.total - plan.layout.data_start


@pytest.mark.parametrize(
    ("recipe", "options"),
    [
        (AB + 'merge "slerp" &0 &1', {}),  # not elementwise
        (AB + 'merge "weighted_sum" &0 &1', {"dtype": "bf16"}),  # torch's bfloat16 rounding
        (AB + 'merge "weighted_sum" &0 &1', {"device": "cuda"}),
        (AB + 'merge "weighted_sum" &0 &1 alpha=&1', {}),  # a weight per element
        (AB + 'merge "weighted_sum" 0.5 &1', {}),  # a constant where a tensor goes
        # a literal's values, though every method is elementwise
        (AB + 'dict blk.0.weight=&0\nliteral &2\nmerge "weighted_sum" &3 &1 alpha=0.5', {}),
        (AB + 'merge "stack" &0 &1', {}),  # another output shape
        (AB + 'merge "pick_component" &0 "vae"', {"family": lambda _: parts_family()}),
        (AB + 'merge "omit_component" &0 "vae"', {"family": lambda _: parts_family()}),
    ],
)
def test_other_merges_go_to_the_torch_engine(
    recipe: str, options: dict[str, object], tmp_path: Path
) -> None:
    write_models(tmp_path, "ab")
    (tmp_path / "r.mecha").write_text(recipe, encoding="utf-8")
    plan = plan_merge(MergeOptions(tmp_path / "r.mecha", tmp_path / "o", **options))  # type: ignore[arg-type]
    assert plan.runs is None
    if options.get("device") != "cuda":  # this machine's torch has no CUDA
        merge_recipe(MergeOptions(tmp_path / "r.mecha", tmp_path / "o", **options))  # type: ignore[arg-type]
        assert (tmp_path / "o").is_file()


def test_a_lora_input_goes_to_the_torch_engine(tmp_path: Path) -> None:
    """An elementwise recipe over a LoRA adds the LoRA's delta, which only torch computes."""
    from tests.test_merge_lora import SD1_BASE, SD1_LORA, UNET, write_base, write_lora

    base = write_base(tmp_path / "base.safetensors", SD1_BASE)
    write_lora(tmp_path / "lora.safetensors", SD1_LORA)
    recipe = tmp_path / "r.mecha"
    recipe.write_text('model "base"\nmodel "lora"\nmerge "add_difference" &0 &1 alpha=0.5')
    options = MergeOptions(recipe, tmp_path / "o.safetensors", dtype="fp32", missing="fallback")
    assert plan_merge(options).runs is None
    merge_recipe(options)
    merged = safetensors.torch.load_file(str(tmp_path / "o.safetensors"))
    trained = UNET + "input_blocks.1.0.in_layers.2.weight"
    assert not torch.equal(merged[trained], base[trained].float())


def test_an_elementwise_merge_never_imports_torch(tmp_path: Path) -> None:
    """Nor numpy where the C extension runs the kernels; nor, once the cache holds the
    registry's fingerprints, the registry and the identifier (the recipe names its models by
    path)."""
    write_models(tmp_path, "abc")
    (tmp_path / "r.mecha").write_text(RECIPES["add_difference"], encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "MIRC_CACHE_DIR": str(tmp_path / "cache"),
    }
    unused: tuple[str, ...] = ("torch", "numpy") if elementwise.FUSED else ("torch",)
    for _ in range(2):  # a cold cache, then a warm one
        code = (
            "import sys; from compiler.cli import main; "
            "status = main(['merge', 'r.mecha', '-o', 'o.safetensors']); "
            f"imported = [m for m in {unused!r} if m in sys.modules]; "
            "assert not imported, imported; sys.exit(status)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "o.safetensors").is_file()
        unused = (*unused, "compiler.registry", "compiler.identify", "lark")


def test_block_fingerprints_are_cached_until_the_registry_changes(tmp_path: Path) -> None:
    from compiler.merge.blocks import BlockFingerprint
    from compiler.merge.families import cached_fingerprints

    spec = tmp_path / "spec"
    (spec / "models").mkdir(parents=True)
    (spec / "models" / "a.yaml").write_text("kind: series\n", encoding="utf-8")
    table = [BlockFingerprint("mir:x.y.z", {"k": (3, None)}, {"IN00": ("a.", "b.")})]
    loads: list[int] = []

    def load() -> list[BlockFingerprint]:
        loads.append(1)
        return table

    cache = tmp_path / "cache"
    assert cached_fingerprints(spec, cache, load) == table
    assert cached_fingerprints(spec, cache, load) == table
    assert len(loads) == 1  # the second run read the cache file
    (spec / "models" / "a.yaml").write_text("kind: series  # edited\n", encoding="utf-8")
    assert cached_fingerprints(spec, cache, load) == table
    assert len(loads) == 2  # another registry, another key
    for path in cache.iterdir():
        path.write_text("{not json", encoding="utf-8")
    assert cached_fingerprints(spec, cache, load) == table and len(loads) == 3
    (tmp_path / "file").write_text("", encoding="utf-8")  # a cache that cannot be made: no error
    assert cached_fingerprints(spec, tmp_path / "file" / "cache", load) == table


def test_the_command_names_the_family_from_the_cached_registry(tmp_path: Path) -> None:
    from compiler.merge.blocks import block_fingerprints
    from compiler.merge.families import _decode, _encode
    from compiler.registry import check_registry
    from compiler.resources import default_spec_dir
    from tests.conftest import run_mirc
    from tests.test_merge import SD1_FINGERPRINT

    table = block_fingerprints(check_registry(default_spec_dir()).linked)
    assert table and _decode(_encode(table)) == table
    for name in "ab":
        tensors = {k: torch.zeros(s, dtype=torch.float16) for k, s in SD1_FINGERPRINT.items()}
        safetensors.torch.save_file(tensors, str(tmp_path / f"{name}.safetensors"))
    (tmp_path / "r.mecha").write_text(AB + 'merge "weighted_sum" &0 &1', encoding="utf-8")
    for _ in range(2):  # the registry, then the cache
        run = run_mirc("merge", str(tmp_path / "r.mecha"), "-o", str(tmp_path / "o.safetensors"))
        assert run.status == 0, run.err
        with safetensors.safe_open(str(tmp_path / "o.safetensors"), "pt") as handle:
            assert handle.metadata()["mir_id"].startswith("mir:info.unet.stable-diffusion-v1")
