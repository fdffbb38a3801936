"""The job queue and upload checks behind `recon serve` (no browser; tiny random-weight model)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_models import make_checkpoint
from PIL import Image

import recon_cli
from recon_cli.errors import InputError
from recon_cli.web.jobs import JobQueue, Photo, safe_display_name

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("sw") / "blob.pt", "doccnet", nonempty=True)


def _wait(jobs: JobQueue, job, timeout: float = 30.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        doc = jobs.status(job)
        if doc["state"] in ("done", "error"):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"job still {jobs.status(job)['state']}")


def _photo(folder: Path, name: str = "photo-0.png") -> Path:
    arr = np.full((48, 64, 3), 120, np.uint8)
    arr[10:38, 18:46] = (200, 40, 40)
    Image.fromarray(arr).save(folder / name)
    return folder / name


def test_queue_runs_in_order_and_names_the_users_file(weights: Path) -> None:
    gate = threading.Event()

    def load():
        gate.wait(10)  # hold the worker: later jobs must wait in the queue, not fail
        return recon_cli.load_model(weights, device="cpu", quality="draft", resolution=16, threads=1)

    jobs = JobQueue(load, max_pending=2)
    try:
        folder = jobs.new_folder()
        good = jobs.submit([Photo("My Chair.png", _photo(folder))], folder)
        folder2 = jobs.new_folder()
        bad_path = folder2 / "photo-0.png"
        bad_path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
        bad = jobs.submit([Photo("broken.png", bad_path)], folder2)
        assert jobs.status(bad)["state"] == "queued" and jobs.status(bad)["position"] == 1
        with pytest.raises(InputError, match="queue is full"):
            folder3 = jobs.new_folder()
            jobs.submit([Photo("x.png", _photo(folder3))], folder3)
        gate.set()
        doc = _wait(jobs, good)
        assert doc["state"] == "done" and doc["mesh"]["faces"] > 100 and doc["masks"]
        assert set(doc["downloads"]) == {"obj", "stl", "glb", "ply"}
        assert jobs.mesh_file(jobs.get(good.id), "stl")[:80] is not None
        head = np.frombuffer(jobs.viewer_data(jobs.get(good.id))[:8], "<i4")
        assert head[0] == doc["mesh"]["vertices"] and head[1] == doc["mesh"]["faces"]
        err = _wait(jobs, bad)
        assert err["state"] == "error" and err["error"].startswith("broken.png: ")
        assert str(folder2) not in err["error"]  # never the temporary path
        assert not (folder / "photo-0.png").exists()  # photos are deleted once used
    finally:
        jobs.close()
    assert not folder.exists()


def test_model_that_cannot_load_fails_each_job_with_one_line(tmp_path: Path) -> None:
    jobs = JobQueue(lambda: recon_cli.load_model(tmp_path / "missing.pt"))
    try:
        folder = jobs.new_folder()
        doc = _wait(jobs, jobs.submit([Photo("a.png", _photo(folder))], folder))
        assert doc["state"] == "error" and "cannot load its model" in doc["error"] and "missing.pt" in doc["error"]
    finally:
        jobs.close()


def test_display_names_are_never_paths() -> None:
    assert safe_display_name("../../etc/passwd", 0) == "passwd"
    assert safe_display_name("C:\\Users\\x\\chair <b>.jpg", 0) == "chair b.jpg"
    assert safe_display_name("", 2) == "photo 3"
