"""Every figure the project draws, in one place: ``chains`` (images of chains and views: strips, zoom
boxes, the paper's Figures 5 and 8, the explorer's static grid) and ``curves`` (metrics per scale,
reward curves, training curves) and ``paper`` (Figures 1-4 and 7 from measured results). ``figures.save_figure`` writes them with their provenance.
"""
from .chains import chain_strip, draw_zoom_boxes, explorer_grid, figure5, figure8, protocol_figure, views_figure
from .curves import figure6, per_scale_figure, training_curves
from .paper import detail_figure, grpo_pipeline_figure, onestep_figure, reward_curves, zoom_chain_figure

__all__ = ["chain_strip", "draw_zoom_boxes", "explorer_grid", "figure5", "figure8", "protocol_figure", "views_figure",
           "figure6", "per_scale_figure", "training_curves", "zoom_chain_figure", "onestep_figure", "detail_figure",
           "grpo_pipeline_figure", "reward_curves"]
