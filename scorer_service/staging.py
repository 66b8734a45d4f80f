"""Staged start: everything that needs no free GPU happens while the editors still hold it.

    staged = StagedStart(device)         # SIGUSR1 handler; call as early as possible
    prepare_device(device)               # CUDA context, cuBLAS and cuDNN handles (a few MB)
    judge = Judge.load(..., stage_on_host=True)   # weights in host memory, target dtype
    pack_into_pinned(judge.model)        # page-locked: the host->device copy runs at DMA speed
    staged.wait_for_go(stopped)          # blocks until SIGUSR1 (or the server is stopped)
    judge.move_to_device()

Pinned memory comes from PyTorch's caching host allocator, which rounds every block up to a power
of two; one `pin_memory()` per tensor would cost up to 2x the weights in page-locked RAM. Tensors
are therefore packed first-fit into 2 GiB blocks (a power of two: no rounding loss) and each
parameter becomes a view of its block.
"""

from __future__ import annotations

import logging
import signal  # this module imports torch only inside functions: StagedStart goes in first
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

PIN_BLOCK_BYTES = 2 << 30
_ALIGN = 256  # every view starts on a boundary valid for any dtype (and for DMA)


class StagedStart:
    """The go signal (SIGUSR1) as an event. Installed before anything slow so that a signal sent
    early is remembered instead of killing the process (SIGUSR1's default action)."""

    GO_SIGNAL = signal.SIGUSR1

    def __init__(self, staged: bool):
        self.staged = staged
        self.go = threading.Event()
        self.go_at: float | None = None
        signal.signal(self.GO_SIGNAL, self._on_signal)

    def _on_signal(self, signum, _frame):
        if not self.staged:
            log.warning("SIGUSR1 ignored: this scorer was not started with --stage-on-host")
            return
        if self.go_at is None:
            self.go_at = time.monotonic()
        self.go.set()

    def wait_for_go(self, stopped: Callable[[], bool]) -> bool:
        """True once the go signal came; False if the server was stopped while waiting."""
        while not self.go.wait(0.2):
            if stopped():
                return False
        return True


def prepare_device(device: str) -> None:
    """Create what the first kernels would create lazily: the CUDA context and the cuBLAS and
    cuDNN handles (cuDNN: the vision tower's patch embedding is a convolution). No-op on CPU."""
    if not device.startswith("cuda"):
        return
    import torch

    dev = torch.device(device)
    torch.cuda.set_device(dev)
    x = torch.ones(8, 8, device=dev)
    torch.cuda.current_blas_handle()
    (x @ x).sum().item()
    torch.nn.functional.conv3d(torch.ones(1, 1, 2, 2, 2, device=dev), torch.ones(1, 1, 1, 1, 1, device=dev))
    torch.cuda.synchronize(dev)


def _pinned_block(nbytes: int) -> "torch.Tensor":
    import torch

    return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)


def pack_into_pinned(module: "torch.nn.Module", *, block_bytes: int = PIN_BLOCK_BYTES,
                     alloc: Callable[[int], "torch.Tensor"] = _pinned_block) -> dict:
    """Copy every CPU parameter and buffer of `module` into a few pinned blocks and make each a
    view of its block (same values, same tensor objects: tied weights stay tied).
    `alloc(nbytes)` gives a uint8 block (tests pass an unpinned one). Returns sizes for the log."""
    tensors: dict[int, "torch.Tensor"] = {}
    for t in list(module.parameters()) + list(module.buffers()):
        if t.device.type == "cpu" and t.numel() > 0:
            tensors.setdefault(id(t), t)
    order = sorted(tensors.values(), key=lambda t: t.numel() * t.element_size(), reverse=True)

    blocks: list[list] = []  # [capacity, used, [(tensor, offset)]]
    for t in order:
        nbytes = t.numel() * t.element_size()
        size = -(-nbytes // _ALIGN) * _ALIGN
        for block in blocks:
            if block[0] - block[1] >= size:
                break
        else:
            block = [max(block_bytes, size), 0, []]
            blocks.append(block)
        block[2].append((t, block[1]))
        block[1] += size

    total = 0
    for _capacity, used, placed in blocks:
        storage = alloc(used)  # a full block is exactly block_bytes; the last one may be smaller
        total += storage.numel()
        for t, offset in placed:
            nbytes = t.numel() * t.element_size()
            view = storage[offset: offset + nbytes].view(t.dtype).view(t.shape)
            view.copy_(t)
            t.data = view
    return {"tensors": len(order), "blocks": len(blocks), "bytes": total,
            "weights_bytes": sum(t.numel() * t.element_size() for t in order)}


def release_host_cache() -> None:
    """Give the pinned blocks back to the OS once the model is on the device (the caching host
    allocator would otherwise keep them, page-locked, for the life of the process)."""
    import torch

    try:
        torch._C._host_emptyCache()
    except Exception as exc:  # noqa: BLE001 - only memory is at stake
        log.warning("could not release the pinned host cache: %s", exc)
