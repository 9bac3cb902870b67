"""The machine a verdict was produced on: the facts that decide verdicts.

A convolution's result can depend on more than the framework's version: which
CPU kernels run (oneDNN on or off, the instruction set oneDNN dispatches to,
PyTorch's ATen CPU capability), the BLAS library and its threads, and the
thread limits the harness set. :func:`detect` collects those facts for the
frameworks already imported in this process (it never imports one itself), so
a worker calls it after loading its adapter and the report records what that
adapter actually ran with.

Each fact is a string (or a dict of strings), so two environments compare
field by field; :data:`DECIDING` lists the fields whose difference can change a
verdict (``conv-conformance compare`` warns about those).
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Any

__all__ = ["detect", "cpu_info", "onednn_isa", "tensorflow_onednn", "torch_mkldnn", "flatten", "DECIDING",
           "ISA_FLAGS"]

#: The CPU flags (as /proc/cpuinfo spells them) that select kernels in oneDNN, XNNPACK, Eigen and ATen.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16", "avx_vnni",
             "avx_ne_convert", "asimd", "sve")

#: Environment variables that change which kernels run or how many threads they use.
KNOBS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
         "XLA_FLAGS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
         "TF_NUM_INTEROP_THREADS", "OPENBLAS_CORETYPE", "KERAS_BACKEND", "JAX_ENABLE_X64")

#: Flattened fields (see :func:`flatten`) whose difference between two runs can change verdicts.
DECIDING = ("cpu.vendor", "cpu.isa", "onednn_isa", "tensorflow.onednn", "tensorflow.version",
            "torch.version", "torch.cpu_capability", "torch.mkldnn", "jax.version", "knobs.ONEDNN_MAX_CPU_ISA",
            "knobs.XLA_FLAGS", "knobs.ATEN_CPU_CAPABILITY")


def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_info() -> dict[str, Any]:
    """CPU vendor and model, usable cores, and which of :data:`ISA_FLAGS` it has."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    return {"vendor": info.get("vendor_id") or info.get("CPU implementer") or platform.processor() or "unknown",
            "model": info.get("model name") or info.get("Model") or platform.machine(),
            "cores": str(usable),
            "isa": ",".join(f for f in ISA_FLAGS if f in flags) or "unknown"}


def onednn_isa(cpu: dict[str, Any] | None = None) -> str:
    """The instruction-set class oneDNN dispatches to: ``avx512``, ``avx2``, ``sse41`` or ``other``.

    The CPU's best class, capped by ``ONEDNN_MAX_CPU_ISA`` (or its older name
    ``DNNL_MAX_CPU_ISA``) when set; oneDNN in TensorFlow and in PyTorch both
    read that variable.
    """
    isa = set((cpu or cpu_info())["isa"].split(","))
    best = "avx512" if "avx512f" in isa else "avx2" if "avx2" in isa else "sse41" if "sse4_2" in isa else "other"
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().lower()
    order = ["other", "sse41", "avx", "avx2", "avx512"]
    if cap and cap != "all":
        capped = next((name for name in reversed(order) if cap.startswith(name)), "other")
        if cap.startswith("avx2") or cap.startswith("avx_vnni"):
            capped = "avx2"
        if order.index(capped) < order.index(best):
            best = capped
    return best


def tensorflow_onednn() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels in this process (None: TensorFlow not imported).

    TensorFlow decides at start-up from ``TF_ENABLE_ONEDNN_OPTS`` and the CPU
    (on by default where it finds AVX-512 VNNI/BF16 or AMX); this asks
    TensorFlow itself rather than reading the variable.
    """
    if "tensorflow" not in sys.modules:
        return None
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def torch_mkldnn() -> bool | None:
    """Whether PyTorch's oneDNN (mkldnn) backend is available and enabled (None: torch not imported)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)


def _frameworks() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        out["tensorflow"] = {"version": str(getattr(tf, "__version__", "?")), "onednn": str(tensorflow_onednn())}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        out["torch"] = {"version": str(torch.__version__), "mkldnn": str(torch_mkldnn()),
                        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
                        "threads": str(torch.get_num_threads())}
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        try:
            backend = jax.default_backend()
        except Exception:  # noqa: BLE001 - a broken install still gets a report
            backend = "unknown"
        out["jax"] = {"version": str(jax.__version__), "backend": backend,
                      "x64": str(bool(jax.config.jax_enable_x64))}
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        try:
            backend = keras.backend.backend()
        except Exception:  # noqa: BLE001
            backend = "unknown"
        out["keras"] = {"version": str(getattr(keras, "__version__", "?")), "backend": backend}
    return out


def _blas() -> list[dict[str, str]]:
    """Every BLAS/OpenMP library loaded in this process, with its threads (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "version", "num_threads", "architecture", "threading_layer")
    return [{k: str(lib.get(k)) for k in keep if lib.get(k) is not None} for lib in threadpool_info()]


def detect(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The environment of this process: CPU, oneDNN ISA, the frameworks already
    imported and their kernel settings, BLAS, and the variables in :data:`KNOBS`
    that are set. ``extra`` (an adapter's ``environment()``) is kept under ``adapter``."""
    cpu = cpu_info()
    env: dict[str, Any] = {
        "cpu": cpu,
        "onednn_isa": onednn_isa(cpu),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "knobs": {k: os.environ[k] for k in KNOBS if k in os.environ},
        "blas": _blas(),
        **_frameworks(),
    }
    if "numpy" in sys.modules:
        env["numpy"] = {"version": sys.modules["numpy"].__version__}
    if extra:
        env["adapter"] = {str(k): str(v) for k, v in extra.items()}
    return env


def flatten(env: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"cpu.vendor": ..., "tensorflow.onednn": ...}``: nested dicts joined with dots (lists as text)."""
    flat: dict[str, str] = {}
    for key, value in env.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list):
            flat[name] = "; ".join(", ".join(f"{k}={v}" for k, v in item.items()) if isinstance(item, dict)
                                   else str(item) for item in value)
        else:
            flat[name] = str(value)
    return flat
