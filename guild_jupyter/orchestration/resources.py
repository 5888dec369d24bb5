"""Resource samples of a run's process tree, recorded as ``sys/...`` scalars."""

from __future__ import annotations

from typing import Any


def _nvml() -> Any:
    try:
        import pynvml  # NVIDIA's management library, when installed

        pynvml.nvmlInit()
        return pynvml
    except Exception:
        return None


def gpu_utilization() -> float | None:
    nv = _nvml()
    if nv is None:
        return None
    count = nv.nvmlDeviceGetCount()
    if not count:
        return None
    return max(
        nv.nvmlDeviceGetUtilizationRates(nv.nvmlDeviceGetHandleByIndex(i)).gpu for i in range(count)
    )


class ResourceSampler:
    """CPU percent and memory of a process and its children; GPU when NVML is present."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid)
        self._procs: dict[int, Any] = {}
        self._nvml = _nvml()

    def sample(self) -> dict[str, float]:
        ps = self._psutil
        try:
            tree = [self._root, *self._root.children(recursive=True)]
        except ps.Error:
            return {}
        cpu = rss = 0.0
        measured = 0
        for p in tree:
            cached = self._procs.setdefault(p.pid, p)
            try:
                with cached.oneshot():
                    cpu += cached.cpu_percent(None)
                    rss += cached.memory_info().rss
                measured += 1
            except ps.Error:
                continue
        if not measured:
            return {}  # the process has ended: no sample rather than a zero
        out = {"sys/cpu_percent": cpu, "sys/mem_rss_mb": rss / 2**20, "sys/procs": float(len(tree))}
        if self._nvml is not None:
            nv = self._nvml
            try:
                for i in range(nv.nvmlDeviceGetCount()):
                    h = nv.nvmlDeviceGetHandleByIndex(i)
                    out[f"sys/gpu{i}_util"] = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
                    out[f"sys/gpu{i}_mem_mb"] = nv.nvmlDeviceGetMemoryInfo(h).used / 2**20
            except Exception:
                pass
        return out
