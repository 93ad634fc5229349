"""The shipped GPU targets: the set the planner relies on, and the hardware facts that decide
dtype and attention choices agree with each target's compute capability."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.ir import Target
from compiler.registry import check_registry
from tests.conftest import ROOT

REQUIRED = {
    "cpu",
    "mps",
    "t4-16g",
    "rtx-3060-12g",
    "rtx-4090-24g",
    "l4-24g",
    "a100-40g",
    "a100-80g",
    "h100-80g",
    "h200-141g",
    "8xa100-80g",
    "8xh100-80g",
    "2x8xh100-80g",
}
# Fields a cluster must share with the single-device target it is made of.
PER_DEVICE = (
    "device",
    "memory_gib",
    "memory_bandwidth_gbs",
    "compute_capability",
    "architecture",
    "dtypes",
    "tflops",
    "attention",
)


@pytest.fixture(scope="module")
def targets() -> dict[str, Target]:
    result = check_registry(Path(ROOT, "spec"))
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.linked is not None
    return dict(result.linked.targets)


def _capability(target: Target) -> tuple[int, int]:
    major, minor = (target.compute_capability or "0.0").split(".")
    return int(major), int(minor)


def test_required_targets_exist(targets: dict[str, Target]) -> None:
    assert set(targets) >= REQUIRED


def test_every_target_names_its_source(targets: dict[str, Target]) -> None:
    assert all(t.source for t in targets.values())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_dtypes_follow_the_architecture(targets: dict[str, Target], name: str) -> None:
    target = targets[name]
    if target.device != "cuda":
        assert "fp8" not in target.dtypes and "tf32" not in target.dtypes
        return
    capability = _capability(target)
    assert ("bf16" in target.dtypes) == (capability >= (8, 0))
    assert ("tf32" in target.dtypes) == (capability >= (8, 0))
    assert ("fp8" in target.dtypes) == (capability >= (8, 9))
    assert set(target.tflops) <= set(target.dtypes)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_attention_kernels_follow_the_architecture(targets: dict[str, Target], name: str) -> None:
    target = targets[name]
    capability = _capability(target)
    assert "sdpa" in target.attention
    assert ("flash-attention-2" in target.attention) == (capability >= (8, 0))
    assert ("sdpa-flash" in target.attention) == (capability >= (8, 0))
    assert ("flash-attention-3" in target.attention) == (capability[0] == 9)
    assert ("xformers" in target.attention) == (target.device == "cuda")


def test_clusters_match_their_device_target(targets: dict[str, Target]) -> None:
    clusters = [t for t in targets.values() if t.device_count > 1]
    assert {t.id for t in clusters} >= {"8xa100-80g", "8xh100-80g", "2x8xh100-80g"}
    for cluster in clusters:
        assert cluster.device_target in targets, cluster.id
        single = targets[cluster.device_target]
        assert single.device_count == 1
        for name in PER_DEVICE:
            assert getattr(cluster, name) == getattr(single, name), (cluster.id, name)
        assert cluster.interconnect.get("intra_node_gbs")
        if cluster.nodes > 1:
            assert cluster.interconnect.get("inter_node_gbs")
