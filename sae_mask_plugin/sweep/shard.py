"""`--shard i/n`: one machine's share of a sweep's groups (light: no SAELens, so a bad spec answers at once)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar


class SizedGroup(Protocol):
    """What a shard needs of a group: its size (`sweep.plan.Group`)."""

    @property
    def sae_parameters(self) -> int: ...


G = TypeVar("G", bound=SizedGroup)


class ShardSpecError(ValueError):
    """A `--shard i/n` that names no share of the grid."""


@dataclass(frozen=True)
class Shard:
    """Share `index` of `count` (0-based): every `count`-th group of the plan, starting at `index`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ShardSpecError(
                f"shard {self.index}/{self.count} does not exist: use i/n with n >= 1 and 0 <= i < n "
                f"(e.g. 0/{max(self.count, 2)})"
            )

    @classmethod
    def parse(cls, spec: str) -> Shard:
        """Read `i/n`, e.g. `0/4` for the first of four shares."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
        if match is None:
            raise ShardSpecError(f"shard spec {spec!r} is not of the form i/n (e.g. 0/4)")
        return cls(int(match.group(1)), int(match.group(2)))

    def select(self, groups: Sequence[G]) -> list[G]:
        """This shard's groups: a deterministic share of the whole plan (finished or not), dealt round-robin
        from the largest group (total SAE parameters) down, so that shards get similar work."""
        by_size = sorted(groups, key=lambda group: -group.sae_parameters)
        return by_size[self.index :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
