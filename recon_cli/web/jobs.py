"""The job queue behind ``recon serve``: one worker thread runs every reconstruction, in order.

One worker means one set of torch threads on the machine, however many people
upload at once: a second upload while one runs waits in the queue (its
position is reported) instead of failing or oversubscribing the cores. The
model is loaded once, by the worker, through the Python API.

Each job owns a private temporary folder (under the queue's own temporary
folder) holding its photos under generated names (``photo-0.jpg``...); the
client's file names are only used for display. Finished jobs keep their mesh
in memory (downloads are encoded on demand) and the oldest are dropped beyond
``keep`` jobs. Nothing here imports a web framework.
"""

from __future__ import annotations

import io
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recon_cli.errors import InputError, ReconError

if TYPE_CHECKING:
    import trimesh

    from recon_cli.api import ReconModel

#: Download formats offered by the page: name -> (exporter key of recon_cli.io.mesh, MIME type).
DOWNLOADS: dict[str, tuple[str, str]] = {
    "obj": ("obj", "text/plain"),
    "stl": ("stl", "model/stl"),
    "glb": ("glb", "model/gltf-binary"),
    "ply": ("ply", "application/octet-stream"),
}

#: Progress (0..1) reached when a pipeline phase starts.
PHASES: dict[str, tuple[float, str]] = {
    "queued": (0.0, "waiting in the queue"),
    "loading": (0.02, "loading the model"),
    "prepare": (0.05, "finding the object in the photos"),
    "encode": (0.15, "encoding the photos"),
    "stage1": (0.2, "stage 1: occupancy field and first mesh"),
    "sample": (0.55, "sampling 300 surface points"),
    "stage2": (0.6, "stage 2: refining the shape"),
    "mesh": (0.92, "writing the mesh"),
    "done": (1.0, "done"),
    "error": (1.0, "failed"),
}


@dataclass
class Photo:
    """One uploaded photo: its display name and where its bytes are stored."""

    name: str
    path: Path


@dataclass
class Job:
    """One reconstruction request (one object, one or more photos)."""

    id: str
    photos: list[Photo]
    folder: Path
    state: str = "queued"  # queued, running, done, error
    phase: str = "queued"
    error: str | None = None
    created: float = field(default_factory=time.time)
    seconds: float = 0.0
    mesh: trimesh.Trimesh | None = None
    masks: list[bytes] = field(default_factory=list)     # PNG overlays of the detected object, one per photo
    inputs: list[bytes] = field(default_factory=list)    # PNG network inputs, one per photo
    methods: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cache: dict[str, bytes] = field(default_factory=dict)


def safe_display_name(name: str | None, index: int) -> str:
    """The client's file name reduced to a short printable base name (display only, never a path)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in "<>\"'`&")[:80].strip()
    return base or f"photo {index + 1}"


def mask_overlay(photo: Path, mask: np.ndarray | None, *, max_pixels: int, side: int = 320) -> bytes:
    """A PNG of the photo with the background dimmed and tinted (what was detected as the object)."""
    from PIL import Image

    from recon_cli.io.images import read_image

    image = read_image(photo, max_pixels=max_pixels).image.convert("RGB")
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    rgb = np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    if mask is None:
        alpha = np.ones(rgb.shape[:2], np.float32)
    else:
        alpha = np.asarray(Image.fromarray(np.clip(mask * 255, 0, 255).astype(np.uint8)).resize(
            size, Image.Resampling.BILINEAR), dtype=np.float32)[..., None][..., 0] / 255.0
    tint = np.array([40.0, 60.0, 120.0])
    out = rgb * alpha[..., None] + (0.35 * rgb + 0.65 * tint) * (1.0 - alpha[..., None])
    buf = io.BytesIO()
    Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class JobQueue:
    """Queued reconstructions run by one worker thread with one model (see the module docstring)."""

    def __init__(self, load: Callable[[], ReconModel], *, max_pending: int = 16, keep: int = 32,
                 max_pixels: int = 40_000_000) -> None:
        self._load = load
        self.max_pending = max_pending
        self.keep = keep
        self.max_pixels = max_pixels
        self.model: ReconModel | None = None
        self.model_error: str | None = None
        self._root = Path(tempfile.mkdtemp(prefix="recon-serve-"))
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._order: list[str] = []  # ids waiting, in order
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="recon-worker", daemon=True)
        self._worker.start()

    def warm_up(self) -> None:
        """Load the model now, in the worker (the page is served meanwhile; jobs wait for it)."""
        self._queue.put("")

    # -- submitting ---------------------------------------------------------------------------
    def new_folder(self) -> Path:
        """A fresh private folder for one job's photos."""
        return Path(tempfile.mkdtemp(prefix="job-", dir=self._root))

    def submit(self, photos: list[Photo], folder: Path) -> Job:
        """Queue a job; InputError when the queue is full."""
        with self._lock:
            if len(self._order) >= self.max_pending:
                shutil.rmtree(folder, ignore_errors=True)
                raise InputError(f"the queue is full ({self.max_pending} jobs waiting); try again in a minute")
            job = Job(uuid.uuid4().hex[:12], photos, folder)
            self._jobs[job.id] = job
            self._order.append(job.id)
            self._evict()
        self._queue.put(job.id)
        return job

    def _evict(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in ("done", "error")]
        while len(self._jobs) > self.keep and finished:
            old = finished.pop(0)
            self._jobs.pop(old.id, None)
            shutil.rmtree(old.folder, ignore_errors=True)

    # -- reading ------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """How many jobs run or wait before ``job`` (0 = it is running or finished)."""
        with self._lock:
            return self._order.index(job.id) if job.id in self._order else 0

    def status(self, job: Job) -> dict[str, Any]:
        """The JSON status of a job."""
        progress, label = PHASES.get(job.phase, (0.0, job.phase))
        doc: dict[str, Any] = {
            "id": job.id, "state": job.state, "phase": job.phase, "progress": progress, "message": label,
            "position": self.position(job) if job.state == "queued" else 0, "error": job.error,
            "photos": [p.name for p in job.photos], "methods": job.methods, "warnings": job.warnings,
            "masks": [f"/api/jobs/{job.id}/mask/{i}.png" for i in range(len(job.masks))],
            "inputs": [f"/api/jobs/{job.id}/input/{i}.png" for i in range(len(job.inputs))],
        }
        if job.state == "queued":
            ahead = doc["position"]
            doc["message"] = f"queued: {ahead} job{'s' if ahead != 1 else ''} ahead" if ahead else "starting"
        if job.mesh is not None:
            doc["mesh"] = {"vertices": len(job.mesh.vertices), "faces": len(job.mesh.faces),
                           "watertight": bool(job.mesh.is_watertight), "seconds": round(job.seconds, 2)}
            doc["downloads"] = {fmt: f"/api/jobs/{job.id}/mesh.{fmt}" for fmt in DOWNLOADS}
            doc["viewer"] = f"/api/jobs/{job.id}/viewer.bin"
        return doc

    def mesh_file(self, job: Job, fmt: str) -> bytes:
        """The job's mesh encoded as ``fmt`` (cached)."""
        from recon_cli.io.mesh import mesh_bytes

        if job.mesh is None or fmt not in DOWNLOADS:
            raise InputError("no such download")
        with self._lock:
            if fmt not in job.cache:
                job.cache[fmt] = mesh_bytes(job.mesh, DOWNLOADS[fmt][0])
            return job.cache[fmt]

    def viewer_data(self, job: Job) -> bytes:
        """Binary mesh for the page's viewer: int32 counts (V, F), float32 positions, normals, uint32 faces."""
        if job.mesh is None:
            raise InputError("no mesh yet")
        with self._lock:
            if "viewer" not in job.cache:
                mesh = job.mesh
                head = np.array([len(mesh.vertices), len(mesh.faces)], "<i4").tobytes()
                job.cache["viewer"] = (head + np.asarray(mesh.vertices, "<f4").tobytes()
                                       + np.asarray(mesh.vertex_normals, "<f4").tobytes()
                                       + np.asarray(mesh.faces, "<u4").tobytes())
            return job.cache["viewer"]

    # -- the worker ---------------------------------------------------------------------------
    def _set(self, job: Job, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(job, key, value)

    def _run(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            if job_id == "":
                try:
                    self._ensure_model()
                except ReconError:
                    pass  # reported to every job
                continue
            job = self.get(job_id)
            if job is None:
                continue
            self._set(job, state="running", phase="loading")
            start = time.perf_counter()
            try:
                self._reconstruct(job)
                self._set(job, state="done", phase="done")
            except ReconError as exc:
                self._set(job, state="error", phase="error", error=self._message(job, exc))
            except Exception as exc:  # noqa: BLE001 - one bad job must not stop the server
                text = f"reconstruction failed ({type(exc).__name__}: {exc})".splitlines()[0]
                self._set(job, state="error", phase="error", error=text)
            finally:
                self._set(job, seconds=time.perf_counter() - start)
                with self._lock:
                    if job.id in self._order:
                        self._order.remove(job.id)
                for photo in job.photos:  # the photos are not needed any more; masks are kept as PNG
                    photo.path.unlink(missing_ok=True)

    def _message(self, job: Job, exc: ReconError) -> str:
        """One line naming the user's file (never the temporary path)."""
        text = str(exc)
        for photo in job.photos:
            text = text.replace(str(photo.path), photo.name)
        return text.splitlines()[0] if text else type(exc).__name__

    def _ensure_model(self) -> ReconModel:
        if self.model is None:
            if self.model_error is not None:
                raise ReconError(self.model_error)
            try:
                self.model = self._load()
            except ReconError as exc:
                self.model_error = f"the server cannot load its model: {exc}"
                raise ReconError(self.model_error) from exc
        return self.model

    def _reconstruct(self, job: Job) -> None:
        model = self._ensure_model()
        self._set(job, phase="prepare")
        views = []
        for i, photo in enumerate(job.photos):
            try:
                view = model.prepare(photo.path)
            except ReconError as exc:
                raise InputError(exc.message, path=photo.name) from exc
            views.append(view)
            overlay = mask_overlay(photo.path, view.mask, max_pixels=self.max_pixels)
            with self._lock:
                job.masks.append(overlay)
                job.inputs.append(_png(view.image))
                job.methods.append(view.method)
                job.warnings.extend(f"{photo.name}: {w}" for w in view.warnings)

        def progress(phase: str, done: int, total: int) -> None:
            if phase in PHASES:
                self._set(job, phase=phase)

        model.reconstructor.on_progress = progress
        try:
            result = model.reconstruct_prepared(views, fuse=len(views) > 1)
        finally:
            model.reconstructor.on_progress = None
        self._set(job, mesh=result.mesh)

    def close(self) -> None:
        """Stop the worker after the current job and delete every temporary file."""
        self._queue.put(None)
        self._worker.join(timeout=30)
        shutil.rmtree(self._root, ignore_errors=True)
