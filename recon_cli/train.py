"""Compatibility module: the training library lives in :mod:`recon_cli.training`."""

from recon_cli.training import *  # noqa: F401,F403
from recon_cli.training import __all__  # noqa: F401
