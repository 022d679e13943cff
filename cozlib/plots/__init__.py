"""Every figure the project draws, in one place: ``chains`` (images of chains and views: strips, zoom
boxes, the paper's Figures 5 and 8, the explorer's static grid) and ``curves`` (metrics per scale,
reward curves, training curves). ``figures.save_figure`` writes them with their provenance.
"""
from .chains import chain_strip, draw_zoom_boxes, explorer_grid, figure5, figure8, protocol_figure, views_figure
from .curves import figure6, per_scale_figure, training_curves

__all__ = ["chain_strip", "draw_zoom_boxes", "explorer_grid", "figure5", "figure8", "protocol_figure", "views_figure",
           "figure6", "per_scale_figure", "training_curves"]
