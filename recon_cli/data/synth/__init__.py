"""Procedural generator of the 13 standard ShapeNet categories (see ``generate``)."""

from __future__ import annotations

from recon_cli.data.synth.generate import GENERATORS, generate

__all__ = ["GENERATORS", "generate"]
