"""What a parser yields for input it cannot read, so that nothing is dropped silently."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quarantined:
    """An unreadable piece of input: where it is in its file, and why it was refused."""

    locator: str
    error_class: str
    error_message: str

    def as_row(self) -> dict[str, str]:
        return {
            "locator": self.locator,
            "error_class": self.error_class,
            "error_message": self.error_message[:2000],
        }
