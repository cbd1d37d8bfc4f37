"""Page pixels as every engine reads them: eight bits a sample, nothing hidden in alpha."""

from __future__ import annotations

from PIL import Image


def eight_bit(image: Image.Image) -> Image.Image:
    """``image`` with eight bits a sample: transparency laid on white (text drawn only in
    alpha stays visible), 16-bit or float samples stretched rather than clipped to white,
    and a Lab image's lightness (Pillow cannot convert Lab); other modes as they are."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        flat = Image.new("RGBA", image.size, "white")
        flat.alpha_composite(image.convert("RGBA"))
        return flat.convert("RGB")
    if image.mode.startswith(("I", "F")):
        wide = image.convert("F")
        high = float(wide.getextrema()[1])  # type: ignore[arg-type]
        if high > 255:
            wide = wide.point(lambda v: v * (255 / high))
        return wide.convert("L")
    if image.mode == "LAB":
        return image.getchannel(0)
    return image
