"""R2C Review desktop app (PySide6): a thin view over ``core``."""
