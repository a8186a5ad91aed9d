"""One exception type per concern, each naming the file (or object) and the reason.

The edges (command line, GUI dialogs) turn these into one line for the user; everything
else is a bug and may show a traceback.
"""

from __future__ import annotations

from pathlib import Path


class R2CError(Exception):
    """Base of every error the user can cause and fix (bad file, bad setting)."""

    def __init__(self, source: str | Path | None, reason: str) -> None:
        self.source = str(source) if source is not None else None
        self.reason = reason
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.source}: {self.reason}" if self.source else self.reason


class ImageLoadError(R2CError):
    """An X-ray file cannot be read or displayed (truncated, undecodable, unsupported...)."""


class WeightsError(R2CError):
    """A model file is missing, corrupt, tampered with, or does not fit the architecture."""


class CheckpointImportError(WeightsError):
    """A TensorFlow checkpoint cannot be read or does not hold the expected generator."""


class StudyDefinitionError(R2CError):
    """A study definition (folder, CSV, variants, readers, votes to import) is invalid."""


class StudyStateError(R2CError):
    """An operation does not fit the study's current state (e.g. voting before precompute)."""


class TrainingError(R2CError):
    """Training data or a training checkpoint is unusable."""


def os_reason(exc: BaseException) -> str:
    """The OS's words for a failed read or write ('No space left on device'), without the wrapping
    a library such as safetensors puts around them, for one-line errors."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    if "I/O error: " in text:
        return text.split("I/O error: ", 1)[1].split(" (os error", 1)[0]
    return text
