"""recon: photos to 3D meshes with D-OccNet."""

__version__ = "0.1.0"
