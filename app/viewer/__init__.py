"""The X-ray viewer: image panes, linked views, compare mode, export."""
