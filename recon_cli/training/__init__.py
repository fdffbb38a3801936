"""Training library: typed config, deterministic sampler, loop, validation, checkpoints, DDP.

Modules: ``config`` (typed config, built-in configs, resolution), ``sampler``
(deterministic data order), ``data`` (datasets and loaders), ``distributed``
(DDP plumbing), ``schedule`` (phases, learning rate), ``state`` (RNG and
checkpoint/resume state), ``validate``, ``finetune`` (stage 2 on stage-1
predictions) and ``loop`` (the :class:`Trainer` and :func:`train`).

Entry point: :func:`train`. The CLI (``recon train``) only resolves the config
(:func:`resolve_config`) and renders the events that :func:`train` reports
through ``on_event``.

Design choices (documented in the README too):

* Loss: binary cross-entropy with logits on the occupancy query points,
  **summed over the points and averaged over the batch**, as OccNet does.
* ``doccnet`` trains its two stages **jointly**: every step computes both
  losses on the same batch (stage 1 from the image, stage 2 from the noisy
  ground-truth surface cloud ``inputs``) and takes one Adam step on their sum.
  The stages share no parameters, so this equals training them separately with
  the same batches, at the cost of one data pass instead of two.
* Optional third phase ``finetune_stage2_on_stage1`` (beyond the paper): stage 1
  is frozen, each training shape gets ``finetune.views`` stage-1 predictions
  (MISE + marching cubes at the probability ``threshold`` on the
  ``finetune.resolution0``/``upsampling_steps`` lattice, then ``n_input_points``
  surface samples, exactly as at inference), cached
  in ``out_dir/finetune_cache.pt``, and stage 2 trains on those clouds.
* Deterministic data order: the global batch of step ``s`` is a slice of the
  concatenated per-epoch permutations seeded by ``(seed, epoch)``; each item's
  random choices (view, augmentation, point subsample, noise) are seeded by
  ``(seed, step, slot)``. Resuming at step ``s`` therefore sees exactly the
  batches an uninterrupted run would; no DataLoader shuffle state is involved.
  Under DDP, rank ``r`` of ``W`` takes slots ``r, r+W, ...`` of the global batch
  (``optim.batch_size`` is the global batch size and must divide by ``W``).
* Validation: IoU on ``data.val_n_points`` occupancy points per val object
  (``logit > logit(threshold)`` vs labels), mean over objects. ``best.pt`` is
  chosen by ``val/iou``: stage-1 IoU for ``onet``, stage-2 IoU for ``onet-pcl``,
  the mean of both for ``doccnet``'s joint phase, and stage 2 on stage-1
  predicted clouds (the full chain) in the fine-tuning phase.
"""

from recon_cli.training.config import (
    BUILTIN_CONFIGS,
    DataConfig,
    EventFn,
    FinetuneConfig,
    OptimConfig,
    TrainConfig,
    TrainResult,
    builtin_config_path,
    config_to_yaml,
    resolve_config,
)
from recon_cli.training.data import PreloadedShapeNetDataset, preloaded_dataset_class
from recon_cli.training.distributed import DistInfo, resolve_device
from recon_cli.training.loop import Trainer, TrainNet, occupancy_loss, train
from recon_cli.training.sampler import SeededItems, StepBatchSampler, batch_indices, item_seed
from recon_cli.training.schedule import Phase, lr_at, plan_phases
from recon_cli.training.state import rng_state, set_rng_state
from recon_cli.training.validate import iou_per_object

__all__ = [
    "BUILTIN_CONFIGS", "DataConfig", "DistInfo", "EventFn", "FinetuneConfig", "OptimConfig", "Phase",
    "PreloadedShapeNetDataset", "SeededItems", "StepBatchSampler", "TrainConfig", "TrainNet", "TrainResult",
    "Trainer", "batch_indices", "builtin_config_path", "config_to_yaml", "iou_per_object", "item_seed",
    "lr_at", "occupancy_loss", "plan_phases", "preloaded_dataset_class", "resolve_config", "resolve_device",
    "rng_state", "set_rng_state", "train",
]
