"""The one seam every image backend sits behind.

An adapter turns a :class:`ImageRequest` into its backend's wire format and turns the answer
back into an :class:`ImageResult`; the agent never sees a backend's own shapes.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

FinishReason = Literal["success", "content_filtered", "error"]
#: The embedded preview renderer's provider id: never a silent substitute for a real provider.
PREVIEW_PROVIDER = "procedural"


class ImageRequest(BaseModel):
    """One call to a backend: a prompt on a model, at a size, with a seed."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the backend's own model name, e.g. 'draft' or 'gpt-image-1'")
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    width: int = 1024
    height: int = 1024
    aspect_ratio: str | None = Field(
        default=None, description="W:H for backends that take a ratio instead of pixels"
    )
    count: int = Field(default=1, ge=1, le=10)
    quality: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str = ""


class GeneratedImage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: bytes
    format: Literal["png", "jpeg", "webp"] = "png"
    width: int
    height: int
    seed: int | None = None


class ImageResult(BaseModel):
    """What a backend made: images, the seed it used, its request id, usage and cost."""

    model_config = ConfigDict(extra="forbid")

    images: list[GeneratedImage] = Field(default_factory=list)
    seed: int | None = None
    provider_request_id: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    cost_usd: float = 0.0
    finish_reason: FinishReason = "success"
    revised_prompt: str | None = None
    tries: int = Field(default=1, ge=1, description="calls made, retries included")


@runtime_checkable
class ImageProvider(Protocol):
    """A backend that makes images. ``name`` is the catalog's provider id (``procedural``)."""

    name: str

    async def generate(self, request: ImageRequest) -> ImageResult: ...
