"""onnxruntime runtime behind the Backend protocol (torch tensors in and out).

Reads a folder written by :func:`recon_cli.runtime.onnx_export.export_onnx`.
With ``device="auto"`` it uses the CUDA execution provider when onnxruntime
has one (and binds torch CUDA tensors directly when torch sees the GPU), the
CPU provider otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recon_cli.errors import CheckpointError, InputError
from recon_cli.runtime.onnx_export import FILES, MANIFEST_NAME, ONNX_FORMAT_VERSION

#: Points per decoder call on the CPU provider: keeps the activations in cache. Measured
#: (1 thread, CPU seconds, 100k points): 1024-2048 ~57k points/s, 4096 ~53k, 16384 ~48k,
#: one call ~45k; the per-call overhead is negligible at this size.
CPU_CHUNK = 2048


def read_manifest(onnx_dir: str | Path) -> dict[str, Any]:
    """Load and check ``onnx_dir/recon_onnx.json`` (CheckpointError naming the file on problems)."""
    onnx_dir = Path(onnx_dir)
    path = onnx_dir / MANIFEST_NAME
    if not onnx_dir.is_dir():
        raise CheckpointError("no such ONNX folder (make one with `recon export-onnx`)", path=onnx_dir)
    if not path.is_file():
        raise CheckpointError(f"not an ONNX export folder: no {MANIFEST_NAME}", path=onnx_dir)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        message = f"cannot read manifest ({type(exc).__name__}: {exc})".splitlines()[0]
        raise CheckpointError(message, path=path) from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != ONNX_FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise CheckpointError(f"unsupported ONNX export format version {found!r} (this recon reads "
                              f"{ONNX_FORMAT_VERSION})", path=path)
    for key in ("model", "image_size", "n_input_points", "has_stage1", "has_stage2", "files"):
        if key not in manifest:
            raise CheckpointError(f"manifest lacks {key!r}", path=path)
    return manifest


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise InputError("onnxruntime is not installed: pip install 'recon-cli[onnx]' "
                         "(or 'recon-cli[gpu]' for CUDA)") from None
    return onnxruntime


def cuda_provider_available() -> bool:
    """Whether onnxruntime here has the CUDA execution provider (onnxruntime-gpu)."""
    try:
        return "CUDAExecutionProvider" in _import_ort().get_available_providers()
    except InputError:
        return False


def _providers(device: str | torch.device) -> list[Any]:
    """onnxruntime providers for ``device`` (auto, cpu, cuda, cuda:N)."""
    ort = _import_ort()
    available = ort.get_available_providers()
    name = str(device).lower()
    if name == "auto":
        name = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if name == "cpu":
        return ["CPUExecutionProvider"]
    if name == "cuda" or name.startswith("cuda:") and name[5:].isdigit():
        if "CUDAExecutionProvider" not in available:
            raise InputError("--device cuda was asked for but onnxruntime has no CUDA execution provider "
                             "(install onnxruntime-gpu)")
        index = int(name[5:]) if ":" in name else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise InputError(f"unknown device {device!r} (use auto, cpu or cuda)")


#: ``optimization`` name -> onnxruntime graph optimisation level attribute.
OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                       "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def session_options(threads: int | None = None, optimization: str = "all") -> Any:
    """Session options: graph optimisation ``optimization`` (default all), ``threads`` intra-op
    threads (default: torch's count, so both runtimes use the same cores)."""
    ort = _import_ort()
    if optimization not in OPTIMIZATION_LEVELS:
        raise InputError(f"unknown optimization {optimization!r}; valid: {', '.join(OPTIMIZATION_LEVELS)}")
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[optimization])
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads if threads is not None else torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle worker threads sleep instead of spinning: each call is a large chunk of work, and
    # spinning threads starve torch (and other processes) on a busy or shared CPU.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxBackend:
    """Runs an exported model with onnxruntime; implements :class:`recon_cli.runtime.base.Backend`.

    On the CPU provider every session runs single-threaded and ``threads``
    workers (None = the process's choice, :mod:`recon_cli.runtime.threads`)
    evaluate whole chunks of points in parallel (:meth:`decode_many`).
    """

    def __init__(self, onnx_dir: str | Path, *, device: str | torch.device = "auto", threads: int | None = None,
                 optimization: str = "all") -> None:
        from recon_cli.io.checkpoint import default_model, default_thresholds
        from recon_cli.runtime.parallel import ChunkPool
        from recon_cli.runtime.threads import chosen_threads

        ort = _import_ort()
        self.cpu_chunk = CPU_CHUNK
        self.onnx_dir = Path(onnx_dir)
        self.manifest = read_manifest(self.onnx_dir)
        self.providers = _providers(device)
        self.threads = threads if threads is not None else chosen_threads()
        self._pool = ChunkPool(self.threads)
        self.has_stage1 = bool(self.manifest["has_stage1"])
        self.has_stage2 = bool(self.manifest["has_stage2"])
        self.image_size = int(self.manifest["image_size"])
        self.n_input_points = int(self.manifest["n_input_points"])
        self.model_name = str(self.manifest["model"])
        # the manifest carries a checkpoint's "thresholds" and "default_model" under the same keys
        self.default_model = default_model(self.manifest)
        self.thresholds: dict[str, float] = default_thresholds(self.manifest)
        on_cpu = self.providers == ["CPUExecutionProvider"]
        options = session_options(1 if on_cpu else self.threads, optimization)
        self._sessions: dict[str, Any] = {}
        for name in self._networks():
            path = self._network_path(name)
            if not path.is_file():
                raise CheckpointError(f"missing {name} network (export incomplete?)", path=path)
            try:
                self._sessions[name] = ort.InferenceSession(str(path), sess_options=options, providers=self.providers)
            except Exception as exc:  # onnxruntime raises its own exception types for bad models
                raise CheckpointError(f"cannot load ONNX model ({type(exc).__name__}: {exc})".splitlines()[0],
                                      path=path) from None
        on_gpu = self._active_provider() == "CUDAExecutionProvider"
        index = next((p[1]["device_id"] for p in self.providers if isinstance(p, tuple)), 0)
        self.device = torch.device("cuda", index) if on_gpu and torch.cuda.is_available() else torch.device("cpu")

    def _network_path(self, name: str) -> Path:
        """The file of network ``name``; names in the manifest may not leave the folder."""
        files = self.manifest["files"]
        file = files.get(name, FILES[name]) if isinstance(files, dict) else FILES[name]
        if not isinstance(file, str) or Path(file).name != file or file in ("", ".", ".."):
            raise CheckpointError(f"bad file name {file!r} for {name} in the manifest",
                                  path=self.onnx_dir / MANIFEST_NAME)
        return self.onnx_dir / file

    def _networks(self) -> list[str]:
        names = []
        if self.has_stage1:
            names += ["image_encoder", "decoder1"]
        if self.has_stage2:
            names += ["point_encoder", "decoder2"]
        return names

    def _active_provider(self) -> str:
        first = next(iter(self._sessions.values()), None)
        return "CPUExecutionProvider" if first is None else first.get_providers()[0]

    @property
    def provider(self) -> str:
        """The execution provider the sessions run on."""
        return self._active_provider()

    def _session(self, name: str) -> Any:
        session = self._sessions.get(name)
        if session is None:
            raise ValueError(f"model {self.model_name!r} has no {name} network")
        return session

    def _run(self, name: str, feeds: dict[str, Tensor], out_shape: tuple[int, ...]) -> Tensor:
        """Run network ``name`` whose output has shape ``out_shape``; no copies where possible."""
        session = self._session(name)
        if self.device.type == "cuda":
            return self._run_cuda(session, feeds, out_shape)
        arrays = {k: np.ascontiguousarray(v.detach().to("cpu", torch.float32).numpy()) for k, v in feeds.items()}
        (out,) = session.run(None, arrays)
        return torch.from_numpy(out)

    def _run_cuda(self, session: Any, feeds: dict[str, Tensor], out_shape: tuple[int, ...]) -> Tensor:
        """Bind torch CUDA tensors as inputs and output (the data never leaves the GPU)."""
        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        binding = session.io_binding()
        inputs = {k: v.detach().to(self.device, torch.float32).contiguous() for k, v in feeds.items()}
        for key, value in inputs.items():
            binding.bind_input(key, "cuda", index, np.float32, tuple(value.shape), value.data_ptr())
        out = torch.empty(out_shape, dtype=torch.float32, device=self.device)
        binding.bind_output(session.get_outputs()[0].name, "cuda", index, np.float32, out_shape, out.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()  # inputs written before onnxruntime reads them
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return out

    def _c_dim(self, stage: int) -> int:
        value = self.manifest.get(f"c_dim{stage}")
        if value is None:
            raise ValueError(f"model {self.model_name!r} has no stage {stage}")
        return int(value)

    def encode_image(self, images: Tensor) -> Tensor:
        """images (B, 3, S, S) in [0, 1] -> codes (B, c1)."""
        return self._run("image_encoder", {"images": images}, (images.shape[0], self._c_dim(1)))

    def encode_points(self, points: Tensor) -> Tensor:
        """points (B, P, 3) -> codes (B, c2)."""
        return self._run("point_encoder", {"points": points}, (points.shape[0], self._c_dim(2)))

    def decode(self, stage: int, points: Tensor, c: Tensor) -> Tensor:
        """points (B, N, 3), codes (B, c) -> logits (B, N) of ``stage`` (1 or 2)."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        name = f"decoder{stage}"
        n = points.shape[1]
        b, step = points.shape[0], self.cpu_chunk
        if self.device.type == "cuda" or n <= step:
            return self._run(name, {"p": points, "c": c}, (b, n))
        parts = [self._run(name, {"p": points[:, i:i + step], "c": c}, (b, min(step, n - i)))
                 for i in range(0, n, step)]
        return torch.cat(parts, dim=1)

    def decode_many(self, stage: int, queries: Sequence[np.ndarray], codes: Tensor, *, level: float | None = None,
                    fast: bool = False) -> list[np.ndarray]:
        """Per-shape points (M_i, 3) float32 and codes (B, c) -> per-shape logits (M_i,); CPU provider only.

        Each shape's points go in fixed chunks of ``cpu_chunk`` over the worker threads. ``level`` and
        ``fast`` are accepted for the backend protocol (see TorchBackend.decode_many) and unused: always
        float32.
        """
        if len(queries) != len(codes):
            raise ValueError(f"{len(queries)} point sets for {len(codes)} codes")
        if self.device.type != "cpu":
            raise ValueError("decode_many runs on the CPU provider; use decode on a GPU")
        from recon_cli.runtime.parallel import map_chunks

        session = self._session(f"decoder{stage}")
        code_arrays = [np.ascontiguousarray(codes[i : i + 1].detach().to("cpu", torch.float32).numpy())
                       for i in range(len(codes))]

        def run(i: int, chunk: np.ndarray) -> np.ndarray:
            (out,) = session.run(None, {"p": chunk[None], "c": code_arrays[i]})
            return out[0]

        return map_chunks(self._pool, queries, self.cpu_chunk, run)

    def close(self) -> None:
        """Stop the decoder's worker threads."""
        self._pool.close()
