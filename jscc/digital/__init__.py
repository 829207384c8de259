"""The digital link: separate source and channel coding, the baseline to deep JSCC.

- ``mcs``: an LTE-like modulation-and-coding table (spectral efficiency per SNR, the cliff);
- ``budget``: bit budgets for ``k`` channel uses (capacity bound or MCS, per fading block);
- ``image_codecs``: JPEG / WebP / HEVC-intra at a bit budget (largest fitting setting);
- ``separation``: the image baseline (best codec per image and SNR);
- ``background_link``: a background over the MCS link (best codec, SNR margin) and its payload;
- ``h264``: H.264 video at a bit budget and its loss rule (the video baseline).

Knows nothing of ``stream``.
"""
