"""Theory: closed forms and exact recursions that measurements are checked against (mean-field
propagation in equivariant networks, neutral modes, the readout bound, linear networks,
entanglement baselines, Noether recursions)."""

from goldstone.theory.mean_field import (
    CRITICAL_EXPONENT,
    SIGMA_W_CRITICAL,
    c_map,
    c_map_slope,
    depth_scale_c,
    depth_scale_overlap,
    fixed_point,
    fixed_point_expansion,
    iterate_c_map,
    overlap_map,
    overlap_slope,
)

__all__ = [
    "CRITICAL_EXPONENT",
    "SIGMA_W_CRITICAL",
    "c_map",
    "c_map_slope",
    "depth_scale_c",
    "depth_scale_overlap",
    "fixed_point",
    "fixed_point_expansion",
    "iterate_c_map",
    "overlap_map",
    "overlap_slope",
]
