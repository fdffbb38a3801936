"""The step loop: :class:`Trainer` and the :func:`train` entry point."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from recon_cli.errors import ConfigError, DatasetError, ReconError
from recon_cli.training.config import EventFn, TrainConfig, TrainResult, config_to_yaml
from recon_cli.training.data import _loader, _make_dataset, _to, _workers, uses_feature_cache, wrap_training_items
from recon_cli.training.distributed import DistInfo, _all_reduce_sum, _init_distributed, resolve_device
from recon_cli.training.finetune import FinetuneMixin
from recon_cli.training.sampler import SeededItems, StepBatchSampler
from recon_cli.training.schedule import Phase, lr_at, plan_phases
from recon_cli.training.state import CheckpointMixin
from recon_cli.training.validate import ValidationMixin

# --------------------------------------------------------------------------- network


def occupancy_loss(logits: Tensor, occ: Tensor) -> Tensor:
    """BCE with logits summed over points, averaged over the batch (OccNet). (B,N),(B,N) -> ()."""
    loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), occ.float(), reduction="none")
    return loss.sum(-1).mean()


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype training uses for ``precision`` (fp32|bf16|auto) on ``device``; None = float32.

    On CUDA anything but fp32 is bf16; on the CPU ``auto`` is bf16 only where the CPU multiplies bf16
    natively (emulated bf16 is ~10x slower).
    """
    if device.type == "cuda":
        return None if precision == "fp32" else torch.bfloat16
    from recon_cli.runtime.decoder_kernel import native_bf16

    bf16 = precision == "bf16" or (precision == "auto" and native_bf16())
    return torch.bfloat16 if bf16 else None


def imported_repeats(models: list[tuple[str, str]], repeat: int) -> np.ndarray | None:
    """Epoch repeats of each training model (``data.imported_repeat`` for imported ones, 1 for procedural
    ones), or None when all are 1."""
    if repeat == 1:
        return None
    from recon_cli.data.photos import is_procedural_id

    return np.array([1 if is_procedural_id(model) else repeat for _, model in models], dtype=np.int64)


class TrainNet(nn.Module):
    """The network of one training step: losses of the trained stages, stacked.

    DDP wraps this module (not the stages) so every trained parameter goes
    through the wrapper's forward and its gradients are synchronised.
    """

    def __init__(self, model: nn.Module, stages: tuple[int, ...], *, cached: bool = False) -> None:
        super().__init__()
        self.model = model
        self.stages = stages
        self.cached = cached

    def forward(self, points: Tensor, occ: Tensor, image: Tensor | None, cloud: Tensor | None) -> Tensor:
        """points (B,N,3), occ (B,N), image (B,3,S,S) or (``cached``) what the feature cache holds
        (pooled (B,D) or the trained tail's input (B,C,H,W)), cloud (B,P,3) -> losses (n_stages,)."""
        losses = []
        for stage in self.stages:
            stage_model = self.model.stage(stage)
            if stage == 1 and image is not None and self.cached:
                logits = stage_model.decode(points, stage_model.encoder.from_cached(image))  # (B, N)
            else:
                logits = stage_model(points, image if stage == 1 else cloud)  # (B, N)
            losses.append(occupancy_loss(logits, occ))
        return torch.stack(losses)

# --------------------------------------------------------------------- the trainer


class _StopFlag:
    """SIGTERM/SIGINT set a flag; the loop saves last.pt at the end of the step and exits."""

    def __init__(self) -> None:
        self.raised = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.raised = True
        self.signum = self.signum or signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer(CheckpointMixin, ValidationMixin, FinetuneMixin):
    """One training run (use :func:`train`)."""

    def __init__(self, config: TrainConfig, *, data_root: Path, out_dir: Path, resume: bool,
                 on_event: EventFn | None, max_steps: int | None, max_minutes: float | None,
                 info: DistInfo, device: torch.device) -> None:
        self.config, self.root, self.out = config, data_root, out_dir
        self.resume, self.on_event = resume, on_event
        self.max_steps, self.max_minutes = max_steps, max_minutes
        self.info, self.device = info, device
        self.phases = plan_phases(config)
        self.step = 0
        self.best_iou: float | None = None
        self.best_step: int | None = None
        self.last_val: dict[str, float] | None = None
        self.last_loss: float | None = None
        self.phase_best: dict[str, float] = {}
        self.cache: dict[str, Tensor] | None = None
        self.val_cache: dict[str, Tensor] | None = None
        if config.optim.batch_size % info.world_size:
            raise ConfigError(
                f"optim.batch_size ({config.optim.batch_size}) must be divisible by the number of "
                f"processes ({info.world_size})"
            )
        self.autocast_dtype = autocast_dtype(config.precision, device)

    # ----------------------------------------------------------------- helpers
    def emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None and self.info.is_main:
            self.on_event(event)

    def log(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    # ------------------------------------------------------------------- run
    def run(self) -> TrainResult:
        t0 = time.perf_counter()
        cfg = self.config
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        from recon_cli.models import build_model, init_image_encoder

        model = build_model(cfg.model).to(self.device)
        extra = self.load_resume(model) if self.resume else None
        if self.resume and extra is None:
            self.emit({"type": "message", "text": f"no {self.out / 'last.pt'} yet: starting from step 0"})
        if extra is None and cfg.init_weights:
            self.load_init_weights(model, Path(cfg.init_weights))
        elif extra is None and cfg.model.has_image_encoder:
            init_image_encoder(self.image_encoder(model), cfg.model.image_encoder)
        self._write_config()
        train_set, val_set = self.datasets(model)
        if len(train_set) == 0:
            raise DatasetError(f"no models in split {cfg.data.train_split!r}", path=self.root)
        if len(val_set) == 0:
            self.emit({"type": "warning", "text": f"{self.root}: split {cfg.data.val_split!r} has no models: no "
                                                  "validation, so no best.pt will be written (use last.pt)"})
        self.emit({"type": "start", "step": self.step, "total_steps": cfg.total_steps,
                   "train_models": len(train_set), "val_models": len(val_set),
                   "device": str(self.device), "world_size": self.info.world_size,
                   "phases": [dataclasses.asdict(p) for p in self.phases]})
        stopped = "done"
        run_start_step = self.step
        with _StopFlag() as flag:
            for phase in self.phases:
                if self.step >= phase.stop:
                    continue
                opt_state = extra["optimizer"] if extra is not None and extra.get("phase") == phase.name else None
                stopped = self._run_phase(phase, model, train_set, val_set, opt_state, flag, t0, run_start_step)
                extra = None
                if stopped != "done":
                    break
        if self.step >= cfg.total_steps:
            stopped = "done"
        signum = (flag.signum or signal.SIGTERM) if stopped == "signal" else None  # another rank's vote: SIGTERM
        return TrainResult(
            out_dir=str(self.out), step=self.step, total_steps=cfg.total_steps, stopped=stopped,
            best_iou=self.best_iou, best_step=self.best_step, last_val=self.last_val,
            last_loss=self.last_loss, seconds=time.perf_counter() - t0,
            last_path=str(self.out / "last.pt"),
            best_path=str(self.out / "best.pt") if (self.out / "best.pt").exists() else None,
            signal=None if signum is None else int(signum),
        )

    def image_encoder(self, model: nn.Module) -> nn.Module:
        """The model's image encoder (stage 1's)."""
        return model.stage(1).encoder

    def datasets(self, model: nn.Module) -> tuple[Any, Any]:
        """The training reader (with cached features / near-surface points) and the val reader."""
        cfg = self.config
        train_set = _make_dataset(cfg, self.root, cfg.data.train_split, train=True)
        train_set = wrap_training_items(cfg, self.root, train_set, model, self.emit)
        return train_set, _make_dataset(cfg, self.root, cfg.data.val_split, train=False)

    def _write_config(self) -> None:
        """config.yaml, and log.jsonl cut back to the steps that last.pt holds (a fresh run empties it)."""
        if not self.info.is_main:
            return
        from recon_cli.io.atomic import atomic_write_text

        atomic_write_text(self.out / "config.yaml", config_to_yaml(self.config))
        log = self.out / "log.jsonl"
        if log.exists():
            kept = []
            for line in log.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    if json.loads(line)["step"] <= self.step:
                        kept.append(line + "\n")
            atomic_write_text(log, "".join(kept))

    def _run_phase(self, phase: Phase, model: nn.Module, train_set: Any, val_set: Any,
                   opt_state: dict[str, Any] | None, flag: _StopFlag, t0: float, run_start: int) -> str:
        cfg = self.config
        params, optimizer, step_net = self._setup_phase(phase, model, opt_state)
        if phase.cloud == "pred":
            self._prepare_finetune(model, train_set, val_set, phase, optimizer)
        self.emit({"type": "phase", "name": phase.name, "start": phase.start, "stop": phase.stop,
                   "step": self.step, "stages": list(phase.stages)})
        sampler = StepBatchSampler(len(train_set), cfg.optim.batch_size,
                                   seed=cfg.seed + 1000 * self.phases.index(phase), start=self.step,
                                   stop=phase.stop, rank=self.info.rank, world_size=self.info.world_size,
                                   repeats=imported_repeats(train_set.models, cfg.data.imported_repeat))
        loader = _loader(SeededItems(train_set), sampler, _workers(cfg, self.device, self.info), self.device,
                         cfg, persistent=False)
        n_stages = len(phase.stages)
        window = {"t": time.perf_counter(), "n": 0, "loss": torch.zeros(n_stages)}
        pending = torch.zeros(n_stages, device=self.device)  # summed since the last sync, on the device
        pending_n = 0
        # CPU: read the losses every step; CUDA: every few steps so the GPU never waits for the host
        sync_every = 1 if self.device.type != "cuda" else min(10, cfg.log_every)
        model.train()
        for batch in loader:
            lr = lr_at(cfg, phase, self.step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            pending += self._train_step(step_net, optimizer, params, batch, phase)  # (n_stages,)
            pending_n += 1
            self.step += 1
            final = self.step >= phase.stop
            capped = self.max_steps is not None and self.step - run_start >= self.max_steps
            due = (final or capped or self.step % sync_every == 0 or self.step % cfg.log_every == 0
                   or self.step % cfg.val_every == 0 or self.step % cfg.checkpoint_every == 0)
            event: dict[str, Any] = {"type": "step", "step": self.step, "total_steps": cfg.total_steps,
                                     "phase": phase.name, "lr": lr}
            if not due:  # every rank takes the same decision: no collective on this step
                self.emit(event)
                continue
            # one collective: mean losses since the last sync, and the stop votes of all ranks
            votes = self._stop_votes(flag, t0, capped=capped)
            packed = torch.cat([pending.float() / pending_n, votes.to(self.device)])
            packed = _all_reduce_sum(packed, self.info, self.device).cpu()
            losses = packed[:n_stages] / self.info.world_size
            if not torch.isfinite(losses).all():
                raise ReconError(f"the loss became {float(losses.sum())} at step {self.step}; lower optim.lr "
                                 f"(last.pt holds the last good state)", path=self.out)
            window["loss"] += losses * pending_n
            window["n"] += pending_n
            pending.zero_()
            pending_n = 0
            self.last_loss = float(losses.sum())
            event.update(loss=self.last_loss, **{f"loss{s}": float(v) for s, v in zip(phase.stages, losses)})
            self.emit(event)
            stop_reason = _first_vote(packed[n_stages:])
            if self.step % cfg.log_every == 0 or final or stop_reason:
                self._log_window(window, phase, lr, t0)
            if self.step % cfg.val_every == 0 or final:
                self._validate(model, val_set, phase, optimizer)  # also writes last.pt
                model.train()
            elif self.step % cfg.checkpoint_every == 0 or stop_reason:
                self.save("last.pt", model, optimizer, phase)
            if stop_reason:
                return stop_reason
        return "done"

    def _setup_phase(self, phase: Phase, model: nn.Module, opt_state: dict[str, Any] | None
                     ) -> tuple[list[Tensor], torch.optim.Optimizer, nn.Module]:
        """Freeze what the phase does not train; Adam (restored on resume); DDP / compile wrappers."""
        o = self.config.optim
        for p in model.parameters():
            p.requires_grad_(False)
        for p in self._trainable(phase, model):
            p.requires_grad_(True)
        if 1 in phase.stages:  # the image stage (the voxel model's one stage)
            for p in self.image_encoder(model).frozen_parameters():  # image_encoder.trainable_blocks
                p.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=phase.lr, betas=o.betas, weight_decay=o.weight_decay)
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
        net = self._step_net(phase, model)
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(net, device_ids=ids)
        step_net = torch.compile(net) if self.config.compile else net
        return params, optimizer, step_net

    def _trainable(self, phase: Phase, model: nn.Module) -> list[nn.Parameter]:
        """Parameters the phase trains, before the frozen trunk units are taken out."""
        return [p for s in phase.stages for p in model.stage(s).parameters()]

    def _step_net(self, phase: Phase, model: nn.Module) -> nn.Module:
        """The module whose forward gives the step's losses (what DDP wraps)."""
        return TrainNet(model, phase.stages, cached=uses_feature_cache(self.config))

    def _stop_votes(self, flag: _StopFlag, t0: float, *, capped: bool) -> Tensor:
        votes = torch.zeros(3)
        votes[0] = float(capped)
        if self.max_minutes is not None and time.perf_counter() - t0 >= 60.0 * self.max_minutes:
            votes[1] = 1
        votes[2] = float(flag.raised)
        return votes

    def _step_inputs(self, batch: dict[str, Any], phase: Phase) -> tuple[Tensor | None, ...]:
        """The arguments of the step network's forward, on the device."""
        points = _to(batch, "points", self.device)  # (B, N, 3)
        occ = _to(batch, "occ", self.device)  # (B, N)
        image = _to(batch, "feature" if "feature" in batch else "image", self.device) if 1 in phase.stages else None
        cloud = self._cloud(batch, phase) if 2 in phase.stages else None
        return points, occ, image, cloud

    def _train_step(self, net: nn.Module, optimizer: torch.optim.Optimizer, params: list[Tensor],
                    batch: dict[str, Any], phase: Phase) -> Tensor:
        inputs = self._step_inputs(batch, phase)
        optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            losses = net(*inputs)  # (n_stages,)
        losses.sum().backward()
        if self.config.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.config.optim.grad_clip)
        optimizer.step()
        return losses.detach()

    def _log_window(self, window: dict[str, Any], phase: Phase, lr: float, t0: float) -> None:
        now = time.perf_counter()
        n = max(1, window["n"])
        record: dict[str, Any] = {
            "step": self.step, "phase": phase.name,
            "loss": float(window["loss"].sum() / n),
            **{f"loss{s}": float(v / n) for s, v in zip(phase.stages, window["loss"])},
            "lr": lr, "samples_per_s": self.config.optim.batch_size * n / max(1e-9, now - window["t"]),
            "elapsed": now - t0,
        }
        self.log(record)
        self.emit({"type": "log", **record})
        window.update(t=now, n=0, loss=torch.zeros_like(window["loss"]))


def _first_vote(votes: Tensor) -> str:
    for flag, name in zip(votes.tolist(), ("max_steps", "max_minutes", "signal")):
        if flag > 0:
            return name
    return ""


# ------------------------------------------------------------------------ entry point


def train(
    config: TrainConfig,
    *,
    data_root: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    on_event: EventFn | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
) -> TrainResult:
    """Train ``config.model`` on the ShapeNet-layout dataset at ``data_root``.

    Writes ``out_dir/config.yaml``, ``log.jsonl``, ``last.pt`` and ``best.pt``.
    ``resume`` continues from ``out_dir/last.pt`` exactly (model, optimizer,
    step, RNG, data order). ``max_steps`` limits the steps of this call,
    ``max_minutes`` its wall time; either stops cleanly after saving ``last.pt``,
    as does SIGTERM/SIGINT. Launched by ``torchrun``, runs DistributedDataParallel
    (only rank 0 writes files and reports events).
    """
    data_root, out_dir = Path(data_root), Path(out_dir)
    if not data_root.is_dir():
        raise DatasetError("no such dataset folder", path=data_root)
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
    if max_minutes is not None and max_minutes <= 0:
        raise ConfigError(f"max_minutes must be > 0, got {max_minutes}")
    if not resume and (out_dir / "last.pt").exists():
        raise ConfigError("a run already exists here; pass --resume to continue it or choose another --out",
                          path=out_dir)
    if resume and not (out_dir / "last.pt").is_file():
        raise ConfigError("--resume: there is no last.pt here to continue from (wrong --out?); "
                          "run without --resume to start a new run", path=out_dir)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(config.device, local_rank=local_rank)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for what runs outside bf16 autocast
    info = _init_distributed(device)
    threads_before = torch.get_num_threads()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    try:
        cls = Trainer
        if config.model.is_voxel:
            from recon_cli.training.voxel import VoxelTrainer

            cls = VoxelTrainer
        trainer = cls(config, data_root=data_root, out_dir=out_dir, resume=resume, on_event=on_event,
                          max_steps=max_steps, max_minutes=max_minutes, info=info, device=device)
        return trainer.run()
    finally:
        torch.set_num_threads(threads_before)
        if info.created:
            import torch.distributed as dist

            dist.destroy_process_group()
