"""Peak throughput and memory of the usual training GPUs, from NVIDIA's datasheets.

* T4 (NVIDIA T4 Tensor Core GPU datasheet): 16 GB GDDR6, 8.1 TFLOPS FP32, 65 TFLOPS mixed
  precision FP16/FP32 on tensor cores. Turing has **no bf16**: on a T4, 16-bit training is fp16
  autocast with a gradient scaler (``torch.amp.GradScaler``: fp16's range ends at 65,504, so
  small gradients would round to zero without scaling the loss). Its memory is bf16's (two
  bytes a copy, float32 master weights; the scaler keeps two scalars).
* A100 (NVIDIA A100 Tensor Core GPU datasheet, SXM): 40/80 GB, 19.5 TFLOPS FP32 (156 with TF32,
  which PyTorch leaves off for matmuls by default), 312 TFLOPS BF16 or FP16 tensor, dense.
* H100 SXM (NVIDIA H100 Tensor Core GPU datasheet): 80 GB, 67 TFLOPS FP32, 989 TFLOPS BF16 or
  FP16 tensor dense (the datasheet's 1,979 assumes 2:4 sparsity). H200 SXM: the same compute, 141 GB.

Peaks are never reached: pass an MFU (model FLOPs utilisation) assumption to
:func:`ftnotes.costs.step_seconds`; 0.3-0.5 is typical for a well-fed transformer step.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_choice

PRECISIONS = ("fp32", "bf16-autocast", "fp16-autocast")


@dataclass(frozen=True)
class Device:
    name: str
    memory_gb: float
    fp32_tflops: float
    half_tflops: float  # 16-bit tensor-core peak (fp16 and, where the chip has it, bf16)
    bf16: bool = True  # does the chip have bf16 tensor cores?

    @property
    def autocast(self) -> str:
        """The 16-bit precision to train in on this device: bf16 where it exists, else fp16."""
        return "bf16-autocast" if self.bf16 else "fp16-autocast"

    def peak(self, precision: str) -> float:
        """Peak TFLOPS for ``precision`` (one of :data:`PRECISIONS`)."""
        check_choice("precision", precision, PRECISIONS)
        if precision == "bf16-autocast" and not self.bf16:
            raise ValueError(f"precision='bf16-autocast': the {self.name} has no bf16 tensor "
                             f"cores; use 'fp16-autocast' (with a GradScaler) or 'fp32'")  # fmt: skip
        return self.fp32_tflops if precision == "fp32" else self.half_tflops


DEVICES = {
    "T4": Device("T4", 16, 8.1, 65, bf16=False),
    "A100-80GB": Device("A100-80GB", 80, 19.5, 312),
    "H100-SXM": Device("H100-SXM", 80, 67, 989),
}
