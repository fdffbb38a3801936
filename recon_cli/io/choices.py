"""Option values the CLI needs before anything heavy loads (this module imports nothing).

``recon --help`` and usage errors must not import numpy, torch or trimesh, so the
choices that CLI options validate against live here and the modules that use
them re-export them.
"""

from __future__ import annotations

#: Segmentation methods of opaque photos (``recon reconstruct --segment``; see :mod:`recon_cli.io.segment`).
SEGMENT_METHODS: tuple[str, ...] = ("auto", "border", "grabcut", "model", "none")

#: Multi-view fusion strategies (``--fusion``; see :mod:`recon_cli.fusion`).
FUSION_STRATEGIES: tuple[str, ...] = ("logits", "code", "cloud", "chain")
