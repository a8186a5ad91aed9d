"""Model files (safetensors + manifest) and import of the authors' TensorFlow checkpoints.

``from core.weights import import_tf_checkpoint`` is the engine API as first specified; the
import itself lives in ``core.weights.tf_import`` and is loaded on first use, so that reading a
manifest does not pull in the checkpoint reader.
"""

from __future__ import annotations

from typing import Any

__all__ = ["import_tf_checkpoint", "import_tf_discriminator"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from core.weights import tf_import

        return getattr(tf_import, name)
    raise AttributeError(f"module 'core.weights' has no attribute {name!r}")
