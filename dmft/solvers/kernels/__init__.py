"""numba kernels of the solver, one concern per module (docs/theory.md §2-4).

``layout``: how the population's arrays and parameters are laid out for the kernels;
``past``: a chunk's pass over the past steps (path, tangent and column sums); ``paths``:
a chunk's outputs and probe tangents at step k (helpers); ``columns``: the diagonal of
a chunk's kernel rows (inlined helpers); ``population``:
the population step (random probes, exact tangents, two replicas); ``draws``: a step's
random draws; ``means``: kernel rows from their per-chunk sums; ``triangles``: lower
triangles stored by rows; ``cholesky``: the incremental Cholesky row; ``weight_side``:
the weight side's step; ``variants``: single-threaded compilations of the parallel kernels.
"""
