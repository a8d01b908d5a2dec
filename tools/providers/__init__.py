"""Image backends behind one seam."""

from tools.providers.base import GeneratedImage, ImageProvider, ImageRequest, ImageResult

__all__ = ["GeneratedImage", "ImageProvider", "ImageRequest", "ImageResult"]
