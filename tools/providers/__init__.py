"""Image backends behind one seam."""

from brandloop.providers import GeneratedImage, ImageProvider, ImageRequest, ImageResult

__all__ = ["GeneratedImage", "ImageProvider", "ImageRequest", "ImageResult"]
