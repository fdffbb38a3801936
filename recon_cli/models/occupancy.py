"""OccupancyModel (encoder + conditional decoder) and D-OccNet (image stage + point stage)."""

from __future__ import annotations

from torch import Tensor, nn

from recon_cli.models.config import ModelConfig
from recon_cli.models.decoder import Decoder
from recon_cli.models.encoders import ResnetPointnet, build_image_encoder


class OccupancyModel(nn.Module):
    """An encoder (image or point cloud) and a conditional occupancy decoder."""

    def __init__(self, encoder: nn.Module, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, inputs: Tensor) -> Tensor:
        """inputs (B, 3, S, S) image or (B, T, 3) points -> code (B, c_dim)."""
        return self.encoder(inputs)

    def decode(self, points: Tensor, c: Tensor) -> Tensor:
        """points (B, N, 3), c (B, c_dim) -> logits (B, N)."""
        return self.decoder(points, c)

    def forward(self, points: Tensor, inputs: Tensor) -> Tensor:
        """points (B, N, 3), inputs -> logits (B, N)."""
        return self.decode(points, self.encode(inputs))


class DOccNet(nn.Module):
    """D-OccNet: ``stage1`` (image OccupancyModel) and/or ``stage2`` (point OccupancyModel).

    ``onet`` models have only stage 1, ``onet-pcl`` only stage 2, ``doccnet`` both.
    At inference the stage-1 mesh is turned into ``n_input_points`` surface points
    (see :func:`recon_cli.pipeline.sample_input_points`) that feed stage 2.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.stage1: OccupancyModel | None = None
        self.stage2: OccupancyModel | None = None
        if cfg.has_stage1:
            enc = cfg.image_encoder
            dec = cfg.decoder1
            self.stage1 = OccupancyModel(build_image_encoder(enc), Decoder(dec.c_dim, dec.hidden, dec.n_blocks))
        if cfg.has_stage2:
            enc2 = cfg.pointnet
            dec2 = cfg.decoder2
            self.stage2 = OccupancyModel(
                ResnetPointnet(enc2.c_dim, enc2.hidden, enc2.n_blocks), Decoder(dec2.c_dim, dec2.hidden, dec2.n_blocks)
            )

    @property
    def name(self) -> str:
        """Registry name of the model."""
        return self.config.name

    def stage(self, index: int) -> OccupancyModel:
        """Stage 1 or 2 (ValueError if the model does not have it)."""
        model = {1: self.stage1, 2: self.stage2}.get(index)
        if model is None:
            raise ValueError(f"model {self.name!r} has no stage {index}")
        return model

    def forward(self, points: Tensor, inputs: Tensor, stage: int = 1) -> Tensor:
        """Logits (B, N) of ``stage`` for query points (B, N, 3) given that stage's inputs."""
        return self.stage(stage)(points, inputs)
