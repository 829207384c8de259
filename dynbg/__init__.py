"""Dynamic backgrounds and key information (paper II-III): foreground segmenters,
key-information crop and paste-back, the background library with ORB matching, streaming
scene segmentation, dynamic and online backgrounds, video reading, and ``semstream bg``.

Knows nothing of ``stream``.
"""
