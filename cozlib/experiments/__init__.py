"""The paper's results as functions of (cached) chain results (docs/PAPER.md §6).

- ``methods``: ``Method`` (one table row: rec_type, backbone, prompt source), the catalogues,
  ``run_methods``, ZoomWorld inputs and the exact truth of every state.
- ``scoring``: no-reference scores, scores against the truth, prompts against the true words.
- ``tables``: Table 1's layout, per-scale means, win counts, prompt orderings, hallucination tables.
- ``stats``: paired differences with bootstrap intervals, reward trends.
- ``detail`` (Figures 2 and 3), ``runtime`` (the appendix's step timing), ``tiling`` (full-image overlap
  consistency), ``user_study`` (an automatic proxy of the user study, not a MOS): notebook 07.

Figures are drawn by ``cozlib.plots``; files are written by ``cozlib.figures``.
"""
from .methods import (PHOTO_METHODS, WORLD_METHODS, Method, MethodModels, methods_by_label, run_methods, truth_states,
                      truth_words, world_inputs, world_methods)
from .scoring import (chain_prompt_scores, critic_scores, extractor_scores, extractor_views, score_chains, score_truth, truth_grid)
from .stats import paired_difference, reward_trend
from .tables import (hallucination_table, paired_extractors, per_scale_means, per_scene_values, prompt_orderings,
                     table1, wins)

__all__ = ["Method", "MethodModels", "PHOTO_METHODS", "WORLD_METHODS", "world_methods", "methods_by_label", "run_methods",
           "world_inputs", "truth_states", "truth_words", "score_chains", "score_truth", "truth_grid", "chain_prompt_scores",
           "extractor_views", "extractor_scores", "critic_scores", "table1", "per_scale_means", "wins", "per_scene_values",
           "prompt_orderings", "hallucination_table", "paired_extractors", "paired_difference", "reward_trend"]
