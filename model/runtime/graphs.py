"""Replay a tensor function from CUDA graphs, one captured per input signature (shapes, dtypes, device).

A P3M-Net forward is ~300 small kernels: eagerly, the GPU waits on Python to launch them; replayed as one
graph, it does not (bench/RESULTS.md has the times). `GraphedFunction` does the
bookkeeping: warm-up on a side stream (cudnn.benchmark picks its algorithms there), capture, static
input and output buffers, one graph per signature. On the CPU it simply calls the function.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

Signature = tuple[tuple[tuple[int, ...], torch.dtype, torch.device], ...]


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[Tensor, ...]   # static: a replay reads these
    outputs: Any                 # static: a replay overwrites these


def signature(*tensors: Tensor) -> Signature:
    """What selects a graph: each input's shape, dtype and device."""
    return tuple((tuple(t.shape), t.dtype, t.device) for t in tensors)


class GraphedFunction:
    """`fn(*tensors)` replayed from CUDA graphs, one captured per input signature.

    The first call with a new signature runs `fn` `warmup` times on a side stream, then captures it.
    Later calls copy their inputs into that graph's static inputs (on the current stream) and replay it
    there. The result is the graph's static output: the next call overwrites it, so copy what you keep.
    One caller thread at a time; graphs share one memory pool, which is safe because replays never
    overlap. CPU inputs: `fn` is just called.
    """

    def __init__(self, fn: Callable[..., Any], *, warmup: int = 3) -> None:
        self.fn = fn
        self.warmup = warmup
        self._graphs: dict[Signature, _Captured] = {}
        self._pool: Any = None

    @property
    def signatures(self) -> list[Signature]:
        """The signatures captured so far, oldest first."""
        return list(self._graphs)

    def __call__(self, *inputs: Tensor) -> Any:
        if not inputs or any(t.device.type != "cuda" for t in inputs):
            return self.fn(*inputs)
        with torch.inference_mode():
            captured = self._graphs.get(signature(*inputs))
            if captured is None:
                captured = self._graphs[signature(*inputs)] = self._capture(inputs)
            else:
                for static, x in zip(captured.inputs, inputs):
                    static.copy_(x)
            captured.graph.replay()
            return captured.outputs

    def reset(self) -> None:
        """Drop every graph (and with the last reference, its memory)."""
        self._graphs.clear()
        self._pool = None

    def _capture(self, inputs: tuple[Tensor, ...]) -> _Captured:
        # The static inputs hold this call's data: the replay right after the capture computes its result.
        static = tuple(torch.empty_like(t).copy_(t) for t in inputs)
        device = static[0].device
        caller = torch.cuda.current_stream(device)
        side = torch.cuda.Stream(device)
        side.wait_stream(caller)
        with torch.cuda.stream(side):
            for _ in range(self.warmup):     # lazy init and cudnn.benchmark's trials stay out of the graph
                self.fn(*static)
        caller.wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        # thread_local: the pipeline's other threads may touch CUDA (e.g. free a tensor) meanwhile.
        with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            outputs = self.fn(*static)
        return _Captured(graph, static, outputs)
