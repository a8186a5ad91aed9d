"""R2C Review engine: X-ray loading, R2C-GAN restoration, lung segmentation, blinded studies.

Nothing under ``core`` imports Qt; the desktop app in ``app`` is a view over this package.
"""

__version__ = "0.1.0"
