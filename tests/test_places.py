"""Tiles that know their place (cozlib.backbones.osediff.places; docs/lab/2026-12-05-direct-sr-tiles.md)."""
import torch

from cozlib.backbones.osediff import OSEDiffOptions, OSEDiffSD3
from cozlib.backbones.osediff.places import PlacedPatchEmbed, random_places, use_places


def _transformer():
    from diffusers import SD3Transformer2DModel
    torch.manual_seed(0)
    return SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=4, out_channels=4, num_layers=1,
                                 attention_head_dim=8, num_attention_heads=2, joint_attention_dim=8,
                                 caption_projection_dim=16, pooled_projection_dim=8, pos_embed_max_size=16).eval()


def test_a_place_reads_the_sincos_table_shifted_and_the_origin_is_the_centre_crop():
    tr = _transformer()
    pe = tr.pos_embed
    centre = pe.cropped_pos_embed(16, 16)                        # 8 x 8 tokens: rows 4..11 of the 16-row table
    use_places(tr)
    assert isinstance(tr.pos_embed, PlacedPatchEmbed)
    pe.places = torch.tensor([[0.0, 0.0], [2.0, 4.0]])           # one token down; two right
    got = pe.cropped_pos_embed(16, 16)
    table = pe.pos_embed.reshape(16, 16, -1)
    assert torch.allclose(got[0], centre[0], atol=1e-6)
    assert torch.allclose(got[1].reshape(8, 8, -1), table[5:13, 6:14], atol=1e-6)
    pe.places = None
    assert torch.equal(pe.cropped_pos_embed(16, 16), centre)


def test_tiles_at_their_places_stop_repeating_on_a_flat_input():
    """The cause of direct SR's grid at 256x: every tile of a flat latent gives the same answer, so the
    velocity repeats at the tile stride; with ``tile_places`` the tiles answer differently."""
    model = OSEDiffSD3.__new__(OSEDiffSD3)
    model.timestep, model.places = torch.tensor(1000.0), None
    z = torch.full((1, 4, 40, 40), 0.3)
    pe, pooled = torch.zeros(1, 3, 8), torch.zeros(1, 8)
    stride = 12                                                  # tile 16, overlap 4
    for places in (False, True):
        model.transformer = _transformer()
        model.options = OSEDiffOptions(phase_average=True, latent_tile=16, latent_tile_overlap=4, tile_places=places)
        if places:
            use_places(model.transformer)
        with torch.no_grad():
            v = model.velocity(z, pe, pooled)
        gap = (v[..., 4:16, 4:16] - v[..., 4 + stride:16 + stride, 4 + stride:16 + stride]).abs().mean() / v.std()
        assert (gap < 1e-4) if not places else (gap > 0.05), (places, float(gap))


def test_random_places_are_whole_patches_within_the_span_and_seeded():
    a, b = random_places(64, 48, [0, 1, 19]), random_places(64, 48, [0, 1, 19])
    assert torch.equal(a, b) and a.shape == (64, 2)
    assert (a % 2 == 0).all() and a.min() >= 0 and a.max() <= 48


def test_random_places_at_the_tile_stride():
    a = random_places(256, 48, [0, 2, 19], step=12)
    assert set(a.unique().tolist()) == {0.0, 12.0, 24.0, 36.0, 48.0}
