"""benchmarks/sft_speed.py runs end to end on a tiny random model and prints lines that parse."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import sft_speed  # noqa: E402


@pytest.mark.slow
def test_tiny_benchmark_prints_every_line():
    out = subprocess.run(
        [sys.executable, "benchmarks/sft_speed.py", "--tiny", "--steps", "1", "--repeats", "1", "--profile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # this checkout's ftlib
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert re.fullmatch(r"cpu kind (AMX|AVX-512-BF16|AVX2|other)  flags .+", lines[0])
    assert re.match(r"threads \d+  matmul: fp32 2048\^3 [\d.]+ GFLOP/s, bf16 \d+\^3 [\d.]+ GFLOP/s", lines[1])
    arms = {
        m.group(1): float(m.group(2))
        for ln in lines
        if (m := re.match(r"(today|cpu_preset)\s+tokens/s\s+([\d.]+) \(range", ln))
    }
    assert set(arms) == {"today", "cpu_preset"} and all(v > 0 for v in arms.values())
    assert any(re.match(r"\s+matmuls\s+[\d.]+\s+[\d.]+$", ln) for ln in lines), out.stdout
    ratio, tps = re.fullmatch(r"speedup ([\d.]+)x tokens_per_s ([\d.]+)", lines[-1]).groups()
    assert float(ratio) > 0 and float(tps) == pytest.approx(arms["cpu_preset"], abs=0.1)


@pytest.mark.parametrize(
    "name, shapes, group",
    [
        ("aten::mm", [[1000, 896], [896, 4864]], "matmuls"),
        ("aten::mm", [[300, 896], [896, 151936]], "embedding / LM head and loss"),
        ("aten::_fused_adamw_", [], "optimizer (AdamW, grad clipping)"),
        ("aten::_scaled_dot_product_flash_attention_for_cpu", [], "attention"),
        ("aten::_to_copy", [], "dtype casts and copies"),
        ("aten::mul", [], "norms, activations, other ops"),
        ("MmBackward0", [], "overhead"),
    ],
)
def test_profile_groups_by_op_name_and_shape(name, shapes, group):
    assert sft_speed.group_of(name, shapes, vocab=151936) == group
