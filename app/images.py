"""Loading X-rays for the viewer off the GUI thread, with a small shared cache.

Thumbnails and the viewer load the same files; the cache keeps the last few decoded
images so a big JPEG 2000 DICOM is decoded once, not once per use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage

from app.qt_util import gray_qimage

if TYPE_CHECKING:
    from core.imaging import XRay

THUMB_SIZE = 96
_CACHE_SIZE = 8


class XRayCache:
    """Thread-safe LRU of loaded X-rays keyed by resolved path."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._items: OrderedDict[str, XRay | Exception] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def load(self, path: str | Path) -> XRay:
        """The X-ray at ``path`` (raises core.errors.ImageLoadError); call from a worker.

        Failures are remembered too, so a broken file is not decoded again for every use.
        """
        from core.errors import ImageLoadError
        from core.imaging import load_xray_isolated

        key = str(Path(path).resolve())
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                item = self._items[key]
                if isinstance(item, Exception):
                    raise item
                return item
        try:
            result: XRay | Exception = load_xray_isolated(path)  # a decoder crash must not end the app
        except ImageLoadError as exc:
            result = exc
        with self._lock:
            self._items[key] = result
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        if isinstance(result, Exception):
            raise result
        return result

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = XRayCache()


def thumbnail(path: str | Path, size: int = THUMB_SIZE) -> QImage:
    """A small picture of the file for the list (QImage is safe to make in a worker)."""
    xray = CACHE.load(path)
    image = gray_qimage(xray.to_uint8())
    return image.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation)


def expand_paths(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Files to list: folders expanded to their X-rays; also one-line problems found."""
    from core.errors import ImageLoadError
    from core.imaging import is_supported, iter_images

    files: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        p = Path(raw)
        try:
            if p.is_dir():
                found = iter_images(p)
                if not found:
                    problems.append(f"{p}: no X-ray images found in this folder")
                files.extend(found)
            elif p.is_file() and is_supported(p):
                files.append(p)
            elif p.exists():
                problems.append(f"{p}: not a supported image file")
            else:
                problems.append(f"{p}: file not found")
        except ImageLoadError as exc:
            problems.append(exc.one_line())
    return files, problems
