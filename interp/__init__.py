"""Frame interpolation for skipped frames: the RIFE-style flow network (IFNet), classical
fallbacks (DIS flow, blend, repeat), foreground-only interpolation, the runtime switch,
the evaluation and ``semstream interp``.

Knows nothing of ``stream``.
"""
