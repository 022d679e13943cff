"""How much detail a view carries: energy of the finest bands, to check there is no blur floor."""
from __future__ import annotations

from PIL import Image


def band_energy(img: Image.Image, bands: int = 3) -> float:
    """Mean squared value of the ``bands`` finest a-trous bands (periods of about 2 to 8 px) of the luma."""
    from ..imageio import pil_to_tensor
    from ..metrics.truth import atrous_bands
    g = pil_to_tensor(img).mean(1, keepdim=True)
    return float(sum((b ** 2).mean() for b in atrous_bands(g, bands)))

