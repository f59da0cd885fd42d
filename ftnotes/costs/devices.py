"""Peak throughput and memory of the usual training GPUs, from NVIDIA's datasheets.

* T4 (NVIDIA T4 Tensor Core GPU datasheet): 16 GB GDDR6, 8.1 TFLOPS FP32, 65 TFLOPS mixed
  precision FP16/FP32 on tensor cores. Turing has **no bf16** tensor cores: on a T4 use fp16
  autocast with a GradScaler (the same bytes as bf16); the 16-bit figure below is fp16.
* A100 (NVIDIA A100 Tensor Core GPU datasheet, SXM): 40/80 GB, 19.5 TFLOPS FP32 (156 with TF32,
  which PyTorch leaves off for matmuls by default), 312 TFLOPS BF16 tensor, dense.
* H100 SXM (NVIDIA H100 Tensor Core GPU datasheet): 80 GB, 67 TFLOPS FP32, 989 TFLOPS BF16
  tensor dense (the datasheet's 1,979 assumes 2:4 sparsity). H200 SXM: the same compute, 141 GB.

Peaks are never reached: pass an MFU (model FLOPs utilisation) assumption to
:func:`ftnotes.costs.step_seconds`; 0.3-0.5 is typical for a well-fed transformer step.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_choice


@dataclass(frozen=True)
class Device:
    name: str
    memory_gb: float
    fp32_tflops: float
    bf16_tflops: float  # 16-bit tensor-core peak (fp16 on the T4)

    def peak(self, precision: str) -> float:
        """Peak TFLOPS for ``precision`` ("fp32" or "bf16-autocast")."""
        check_choice("precision", precision, ("fp32", "bf16-autocast"))
        return self.fp32_tflops if precision == "fp32" else self.bf16_tflops


DEVICES = {
    "T4": Device("T4", 16, 8.1, 65),
    "A100-80GB": Device("A100-80GB", 80, 19.5, 312),
    "H100-SXM": Device("H100-SXM", 80, 67, 989),
}
