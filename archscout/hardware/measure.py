"""Measured latency on this machine: onnxruntime or PyTorch eager, pinned threads, warm-up, median of repeats.

The timer is injectable (``timer=``, default ``time.perf_counter``), so tests run with a fake clock and never
depend on how busy the machine is. Measurements are cached per (device, model factory, input shape,
functional hash) in memory and, with ``cache_path``, in a JSON file, so one architecture is never measured
twice on one device.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .._torch import torch_threads
from .._validate import check_int
from ..errors import BuildError, ConfigError, DataError, require
from ..space import Architecture
from .base import (
    CostModel,
    Measurement,
    factory_config,
    factory_key,
    register_cost_model,
)
from .devices import RUNTIMES, DeviceProfile, get_device

__all__ = ["LatencyCache", "LatencyMeter", "MeasuredLatency", "check_reference", "onnx_bytes", "reference_arch"]

CACHE_FORMAT = "archscout-latency-cache"
CACHE_VERSION = 1


def onnx_bytes(module: Any, example: Any, opset: int = 17) -> bytes:
    """Export ``module`` (eval mode) for inputs shaped like ``example`` to an in-memory ONNX model, with
    :func:`archscout.nn.export_onnx` (TorchScript exporter, dynamo fallback).

    Raises:
        BuildError: neither exporter can export the module.
    """
    from ..nn import export_onnx

    module.eval()
    with tempfile.TemporaryDirectory() as d:
        path = export_onnx(module, os.path.join(d, "model.onnx"), tuple(example.shape[1:]),
                           batch_size=int(example.shape[0]), opset=opset)
        with open(path, "rb") as f:
            return f.read()


class LatencyMeter:
    """Times a ``torch.nn.Module`` on this machine.

    Two protocols:

    - *plain* (no reference set): ``warmup`` untimed runs, then ``repeats`` timed runs; the samples are the
      run times.
    - *paired* (after :meth:`set_reference`): every run of the model is followed by a run of a fixed reference
      network; each sample is ``model time / reference time x reference_ms``, where ``reference_ms`` is the
      reference's median latency from a calibration at the start. Whatever slows the machine at that moment
      (other processes on a shared CPU, a lower clock) slows both runs of a pair alike and cancels, so a
      measurement repeats far better on a busy machine. The result is the latency under the calibration's
      conditions, still in ms.

    Either way the measurement is the median and inter-quartile range of the samples, in ms.

    Args:
        runtime: ``"onnxruntime"`` (export to ONNX, CPU provider, ``intra_op_num_threads=threads``,
            ``inter_op_num_threads=1``, sequential execution, all graph optimisations) or ``"torch"`` (eager,
            ``torch.inference_mode``, ``torch.set_num_threads(threads)`` while timing).
        batch_size: inputs per run.
        threads: compute threads.
        warmup: untimed runs before timing.
        repeats: timed runs.
        timer: a clock in seconds (default ``time.perf_counter``), read before and after each timed run (and
            after each reference run when paired).

    Raises:
        ConfigError: invalid settings.
    """

    def __init__(self, runtime: str = "onnxruntime", batch_size: int = 1, threads: int = 1, warmup: int = 10,
                 repeats: int = 30, timer: Callable[[], float] | None = None) -> None:
        if runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        self.runtime = runtime
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.threads = check_int("threads", threads, 1)
        self.warmup = check_int("warmup", warmup, 0)
        self.repeats = check_int("repeats", repeats, 1)
        if timer is not None and not callable(timer):
            raise ConfigError(f"timer must be a callable returning seconds, got {timer!r}")
        self.timer: Callable[[], float] = timer or time.perf_counter
        self._reference: Callable[[], Any] | None = None
        self.reference_ms: float | None = None

    @classmethod
    def for_device(cls, device: DeviceProfile, warmup: int = 10, repeats: int = 30,
                   timer: Callable[[], float] | None = None) -> LatencyMeter:
        """A meter with the device's runtime, batch size and threads. Raises ConfigError for table devices."""
        if device.kind != "measured":
            raise ConfigError(f"device {device.name!r} is a table device; use the 'table-latency' cost model")
        return cls(device.runtime or "onnxruntime", device.batch_size, device.threads, warmup, repeats, timer)

    def prepare(self, module: Any, input_shape: Sequence[int]) -> Callable[[], Any]:
        """A zero-argument function running one batch through ``module`` on the runtime (export included).

        Raises:
            OptionalDependencyError: torch or onnxruntime is missing. BuildError: the export fails.
        """
        torch = require("torch", "nn")
        module.eval()
        gen = torch.Generator().manual_seed(0)
        x = torch.randn((self.batch_size, *tuple(input_shape)), generator=gen)
        if self.runtime == "torch":
            def run_torch() -> Any:
                with torch.inference_mode():
                    return module(x)

            return run_torch
        with torch_threads(1):
            model = onnx_bytes(module, x)
        return self._session_runner(model, x.numpy(), type(module).__name__)

    def prepare_onnx(self, model: str | os.PathLike | bytes, input_shape: Sequence[int]) -> Callable[[], Any]:
        """Like :meth:`prepare` for an ONNX model (a file path or the model's bytes) taking one float32 input
        of per-sample shape ``input_shape``.

        Raises:
            ConfigError: the runtime is not onnxruntime. BuildError: onnxruntime cannot load the model.
        """
        import numpy as np

        if self.runtime != "onnxruntime":
            raise ConfigError(f"prepare_onnx needs the onnxruntime runtime, this meter uses {self.runtime!r}")
        data = model if isinstance(model, bytes) else os.fspath(model)
        x = np.random.default_rng(0).standard_normal((self.batch_size, *tuple(input_shape))).astype(np.float32)
        return self._session_runner(data, x, str(data)[:80] if not isinstance(data, bytes) else "ONNX model")

    def session(self, model: str | os.PathLike | bytes, what: str | None = None) -> Any:
        """An ``onnxruntime.InferenceSession`` of ``model`` (a file path or the model's bytes) with this meter's
        settings: CPU provider, ``intra_op_num_threads=threads``, ``inter_op_num_threads=1``, sequential
        execution, all graph optimisations. The session that :meth:`prepare_onnx` times, for other uses of
        the same model (e.g. computing its accuracy).

        Raises:
            OptionalDependencyError: onnxruntime is missing. BuildError: onnxruntime cannot load the model.
        """
        ort = require("onnxruntime", "nn")
        data = model if isinstance(model, bytes) else os.fspath(model)
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        try:
            return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        except Exception as e:
            label = what or ("ONNX model" if isinstance(data, bytes) else str(data)[:80])
            raise BuildError(f"onnxruntime cannot load {label}: {e}") from e

    def _session_runner(self, model: str | bytes, x: Any, what: str) -> Callable[[], Any]:
        session = self.session(model, what)
        feed = {session.get_inputs()[0].name: x}
        return lambda: session.run(None, feed)

    def set_reference(self, module: Any, input_shape: Sequence[int], reference_ms: float | None = None,
                      calibration: int = 200) -> float:
        """Switch to the paired protocol with ``module`` as the reference network; returns ``reference_ms``.

        Args:
            reference_ms: the reference's latency (ms) from an earlier calibration (e.g. stored in a cache);
                None calibrates now: the median of ``calibration`` timed runs after the warm-up.

        Raises:
            ConfigError: ``reference_ms`` is not a positive number, or ``calibration`` < 1.
        """
        if reference_ms is not None and not (isinstance(reference_ms, (int, float)) and reference_ms > 0):
            raise ConfigError(f"reference_ms must be a positive number of ms, got {reference_ms!r}")
        check_int("calibration", calibration, 1)
        run = self.prepare(module, input_shape)
        if reference_ms is None:
            self._reference = None
            saved = self.repeats
            self.repeats = calibration
            try:
                reference_ms = self.time(run).median_ms
            finally:
                self.repeats = saved
        self._reference, self.reference_ms = run, float(reference_ms)
        return self.reference_ms

    @property
    def paired(self) -> bool:
        """True once :meth:`set_reference` has prepared a reference network in this process."""
        return self._reference is not None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_reference"] = None  # a runtime session does not pickle; set_reference again (reference_ms kept)
        return state

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Pin PyTorch's thread count (torch runtime) and pause the garbage collector while timing."""
        threads = torch_threads(self.threads) if self.runtime == "torch" else contextlib.nullcontext()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            with threads:
                yield
        finally:
            if was_enabled:
                gc.enable()

    def time(self, run: Callable[[], Any]) -> Measurement:
        """Time ``run`` with the current protocol (see the class docstring); median and IQR in ms."""
        ref = self._reference
        samples = []
        with self.pinned():
            for _ in range(self.warmup):
                run()
                if ref is not None:
                    ref()
            for _ in range(self.repeats):
                t0 = self.timer()
                run()
                t1 = self.timer()
                if ref is None:
                    samples.append((t1 - t0) * 1000.0)
                    continue
                ref()
                t2 = self.timer()
                samples.append((t1 - t0) / max(t2 - t1, 1e-12) * self.reference_ms)  # type: ignore[operator]
        return Measurement.from_samples(samples)

    def measure(self, module: Any, input_shape: Sequence[int]) -> Measurement:
        """Prepare and time ``module`` on per-sample ``input_shape`` (e.g. ``(3, 32, 32)``)."""
        return self.time(self.prepare(module, input_shape))


class LatencyCache:
    """``{key: Measurement}`` in memory, mirrored to a JSON file when ``path`` is given.

    Writing merges with what the file holds, so several processes can share one file (the last writer of the
    same key wins). The file is replaced atomically.

    Raises:
        DataError: the file exists but is not a latency cache.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.entries: dict[str, Measurement] = {}
        if self.path is not None:
            self.entries.update(self._read())

    def _read(self) -> dict[str, Measurement]:
        assert self.path is not None
        if not os.path.exists(self.path):
            return {}
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if data.get("format") != CACHE_FORMAT:
                raise ValueError("not an archscout latency cache")
            if data.get("version") != CACHE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {CACHE_VERSION}")
            return {k: Measurement.from_dict(v) for k, v in data["entries"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataError(f"latency cache {self.path!r} cannot be read ({e}); "
                            "delete it or pick another path") from None

    def get(self, key: str) -> Measurement | None:
        return self.entries.get(key)

    def put(self, key: str, m: Measurement) -> None:
        self.entries[key] = m
        if self.path is None:
            return
        merged = self._read()
        merged.update(self.entries)
        self.entries = merged
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        payload = {"format": CACHE_FORMAT, "version": CACHE_VERSION,
                   "entries": {k: v.to_dict() for k, v in sorted(merged.items())}}
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries


def check_reference(reference: Any) -> Any:
    """Validate a ``reference=`` setting: None, ``"auto"``, an Architecture or an architecture string.

    Raises:
        ConfigError: anything else.
    """
    if reference is None or isinstance(reference, (str, Architecture)):
        return reference
    raise ConfigError(f"reference must be None, 'auto', an Architecture or its string, got {reference!r}")


def reference_arch(reference: Any, arch: Architecture) -> Architecture | None:
    """The reference architecture for measurements of ``arch``: ``"auto"`` is a fixed sample of its space
    (``space.sample(numpy.random.default_rng(0))``); a string is parsed in that space."""
    if reference is None or isinstance(reference, Architecture):
        return reference
    if reference == "auto":
        import numpy as np

        return arch.space.sample(np.random.default_rng(0))
    return arch.space.parse(reference)


def reference_config(reference: Any) -> str | None:
    return None if reference is None else str(reference)


@register_cost_model
class MeasuredLatency(CostModel):
    """Latency measured on this machine, in ms (median of ``repeats`` samples). ``cheap=False``: it runs like an
    evaluator; each architecture is measured once per device (cached by functional hash).

    Args:
        device: a measured device profile or its name (``"cpu-ort"``, ``"cpu-torch"``).
        factory: ``ModelFactory`` (or its config dict, or any callable ``arch -> torch.nn.Module``); None builds
            ``archscout.nn.ModelFactory(input_shape or (3, 32, 32), num_classes=10)`` when first needed.
        input_shape: per-sample input shape; defaults to ``factory.input_shape``.
        runtime / batch_size / threads: override the device's settings (None keeps them).
        warmup / repeats / timer: see :class:`LatencyMeter`.
        cache_path: optional JSON file keeping measurements across runs and processes.
        reference: ``"auto"`` (default) times each run paired with a fixed reference network of the same
            space, which makes measurements repeat on a busy machine (see :class:`LatencyMeter`); an
            architecture (or its string) picks the reference; None times plain runs. The reference's
            calibration is cached like a measurement, so one cache keeps one scale.

    Raises:
        UnknownNameError: unknown device. ConfigError: a table device or invalid settings.
        DataError: ``cache_path`` holds something else.
    """

    name, unit, cheap = "measured-latency", "ms", False

    def __init__(self, device: str | DeviceProfile | Mapping[str, Any] = "cpu-ort", factory: Any = None,
                 input_shape: Sequence[int] | None = None, *, runtime: str | None = None,
                 batch_size: int | None = None, threads: int | None = None, warmup: int = 10, repeats: int = 30,
                 timer: Callable[[], float] | None = None, cache_path: str | os.PathLike | None = None,
                 reference: Any = "auto") -> None:
        dev = get_device(device)
        if dev.kind != "measured":
            raise ConfigError(f"device {dev.name!r} is a table device; use the 'table-latency' cost model")
        self.device = dev.replace(runtime=runtime, batch_size=batch_size, threads=threads)
        self.meter = LatencyMeter.for_device(self.device, warmup, repeats, timer)
        self._set_source(factory, input_shape)
        self.reference = check_reference(reference)
        self._ref_arch: Architecture | None = None
        self.cache = LatencyCache(cache_path)
        self.n_measured = 0  # measurements actually run by this object (cache hits excluded)

    def _prefix(self) -> str:
        factory, shape = self._ready()
        return f"{self.device.key()}|f{factory_key(factory)}|{'x'.join(map(str, shape))}"

    def _protocol(self, arch: Architecture) -> str:
        if self.reference is None:
            return "plain"
        if self._ref_arch is None:
            self._ref_arch = reference_arch(self.reference, arch)
        return f"paired:{self._ref_arch.functional_hash()}"  # type: ignore[union-attr]

    def cache_key(self, arch: Architecture) -> str:
        """Key of ``arch`` in the cache: device identity, factory config, input shape, protocol (and
        reference), functional hash."""
        return f"{self._prefix()}|{self._protocol(arch)}|{arch.functional_hash()}"

    def _ensure_reference(self, arch: Architecture) -> None:
        if self.reference is None or self.meter.paired:
            return
        self._protocol(arch)
        ref = self._ref_arch
        assert ref is not None
        key = f"{self._prefix()}|reference|{ref.functional_hash()}"
        stored = self.cache.get(key)
        known = self.meter.reference_ms if stored is None else stored.median_ms
        factory, shape = self._ready()
        with torch_threads(1):
            module = factory(ref)
        ms = self.meter.set_reference(module, shape, known, calibration=max(200, 4 * self.meter.repeats))
        if stored is None:
            self.cache.put(key, Measurement(ms, 0.0, ()))

    def measure(self, arch: Architecture, cached: bool = True) -> Measurement:
        """Median and spread of ``arch``'s latency on the device.

        With ``cached=False`` it measures again and leaves the cache as it is (e.g. to check repeatability).

        Raises:
            BuildError: the model cannot be built or exported.
        """
        key = self.cache_key(arch)
        if cached:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        self._ensure_reference(arch)
        factory, shape = self._ready()
        with torch_threads(1):
            module = factory(arch)
        m = self.meter.measure(module, shape)
        self.n_measured += 1
        if cached:
            self.cache.put(key, m)
        return m

    def measure_onnx(self, path: str | os.PathLike, arch: Architecture | None = None,
                     input_shape: Sequence[int] | None = None) -> Measurement:
        """Time an exported ONNX file (e.g. the trained model of ``arch``) on the device, with this cost model's
        meter (runtime settings, warm-up, repeats) and protocol: paired with the reference network of
        ``arch``'s space when ``reference`` is set, so the figure is on the scale of :meth:`measure`. Not
        cached (the file's weights are not part of the cache key).

        Args:
            path: the ``.onnx`` file; one float32 input of per-sample shape ``input_shape``.
            arch: the architecture the file holds; needed to set up the paired reference (None: plain runs
                unless a reference is already set up).
            input_shape: per-sample input shape; defaults to the cost model's.

        Raises:
            ConfigError: the device's runtime is not onnxruntime. BuildError: onnxruntime cannot load the file.
        """
        if self.meter.runtime != "onnxruntime":
            raise ConfigError(f"device {self.device.name!r} runs {self.meter.runtime!r}; timing an ONNX file needs "
                              "an onnxruntime device such as 'cpu-ort'")
        if arch is not None:
            self._ensure_reference(arch)
        shape = tuple(input_shape) if input_shape is not None else self._ready()[1]
        return self.meter.time(self.meter.prepare_onnx(path, shape))

    def measure_module(self, module: Any, input_shape: Sequence[int] | None = None) -> Measurement:
        """Time any module on the device (no caching; paired only once a reference is set up)."""
        shape = tuple(input_shape) if input_shape is not None else self._ready()[1]
        return self.meter.measure(module, shape)

    def predict(self, arch: Architecture) -> float:
        return self.measure(arch).median_ms

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name, "device": self.device.to_config(), "factory": factory_config(self.factory),
            "input_shape": None if self._input_shape is None else list(self._input_shape),
            "warmup": self.meter.warmup, "repeats": self.meter.repeats, "cache_path": self.cache.path,
            "reference": reference_config(self.reference),
        }
