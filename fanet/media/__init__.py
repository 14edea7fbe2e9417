"""Frame sources (images, folders, videos, cameras, network streams, ROS 2 bags) and what
labels are written as (PNGs, overlays, video, ROS 2 bags) (device side, Python 3.6; bags
need Python >= 3.7)."""
