"""Procedural generator of the 13 standard ShapeNet categories.

``generate(category, seed)`` returns a watertight, per-face coloured mesh in the canonical frame of
DATA.md (+y up, the object's front towards +x: chair seats and sofas face +x with the backrest at -x,
airplane/car/vessel noses and rifle muzzles point to +x, screens, drivers and keypads face +x; a
bench's, sofa's or table's long side runs along z). The part generators build with the front
towards +z (their comments say so); ``generate`` rotates the result once (``BUILD_FRAME``).
"""

from __future__ import annotations

from recon_cli.data.synth.dataset import model_seed, synth_dataset, synth_jobs
from recon_cli.data.synth.generate import FAMILY_DRAWS, GENERATORS, families, family_of, generate
from recon_cli.data.synth.sheet import contact_sheet

__all__ = ["FAMILY_DRAWS", "GENERATORS", "contact_sheet", "families", "family_of", "generate", "model_seed",
           "synth_dataset", "synth_jobs"]
