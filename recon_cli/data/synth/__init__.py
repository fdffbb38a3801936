"""Procedural generator of the 13 standard ShapeNet categories.

``generate(category, seed)`` returns a watertight, per-face coloured mesh in the canonical frame
(+y up, the object's front towards +z: chair seats and sofas face +z with the backrest at -z,
airplane/car/vessel noses and rifle muzzles point to +z, screens, drivers and keypads face +z).
"""

from __future__ import annotations

from recon_cli.data.synth.dataset import model_seed, synth_dataset, synth_jobs
from recon_cli.data.synth.generate import FAMILY_DRAWS, GENERATORS, families, family_of, generate
from recon_cli.data.synth.sheet import contact_sheet

__all__ = ["FAMILY_DRAWS", "GENERATORS", "contact_sheet", "families", "family_of", "generate", "model_seed",
           "synth_dataset", "synth_jobs"]
