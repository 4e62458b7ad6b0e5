"""Weights math, Route 53 semantics: share = weight / sum; every weight 0 means an equal split."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Split:
    old: int
    new: int

    @property
    def new_share(self) -> float:
        """The new cluster's share of requests, 0.0-1.0. All zero splits equally (Route 53 documents this)."""
        total = self.old + self.new
        return 0.5 if total == 0 else self.new / total

    @property
    def all_old(self) -> bool:
        return self.new == 0 and self.old > 0

    def label(self) -> str:
        return f"{self.old}/{self.new} ({round(100 * self.new_share)}% new)"

    def to_dict(self) -> dict[str, int]:
        return {"old": self.old, "new": self.new}


ALL_OLD = Split(old=100, new=0)


def split_of(d: dict[str, int]) -> Split:
    return Split(old=int(d["old"]), new=int(d["new"]))


def validate(split: Split) -> None:
    for w in (split.old, split.new):
        if not 0 <= w <= 255:
            raise ValueError(f"weight {w} is outside Route 53's 0-255")
