"""Frame sources (images, folders, videos, cameras, network streams) and what labels are
written as (PNGs, overlays, video) (device side, Python 3.6)."""
