"""A seed ensemble: members of one architecture, each trained alone with its own seed.

A study with several ``train.seeds`` is scored by the mean of its members' normalised
scores: each member's score divided by its ``scale``. A reconstruction error's size is a
member's own (its weights set how small a normal input's error is), so its scale is the
median error of its normal calibration samples; a classifier's probabilities already
share one scale (1). The checkpoint holds the members' weights under ``members.<i>.``,
and ``pipeline predict`` uses the ensemble as it uses any model.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from pipeline.models import build, register


@register("seed_ensemble")
class SeedEnsemble(nn.Module):
    def __init__(self, member: str, member_kwargs: dict, seeds: list[int], scales: list[float]):
        super().__init__()
        if len(seeds) != len(scales) or len(seeds) < 2:
            raise ValueError(f"a seed ensemble needs two or more members with one scale each, "
                             f"got seeds {seeds} and scales {scales}")
        self.seeds, self.scales = list(seeds), list(scales)
        self.members = nn.ModuleList(build(member, **member_kwargs) for _ in seeds)

    @classmethod
    def of(cls, members: Sequence[nn.Module], member: str, member_kwargs: dict, seeds: list[int],
           scales: list[float]) -> SeedEnsemble:
        """The ensemble of already trained ``members`` (built as ``member(**member_kwargs)``)."""
        ensemble = cls(member, member_kwargs, seeds, scales)
        ensemble.members = nn.ModuleList(members)
        return ensemble

    def forward(self, x):  # scoring goes through each member (pipeline.training.predict_scores)
        raise TypeError("a seed ensemble scores by its members' scores, not by one forward pass")
