"""Offline runs and experiments: the offline runner (``semstream run``: sender core ->
wire -> receiver core on a clip), the resumable sweep over clips, methods, channels and
SNRs (JSCC and H.264 baselines), its markdown report and plots, and the base-station
experiment. Builds on ``stream.core``, ``stream.basestation`` and ``jscc.digital``.
"""
