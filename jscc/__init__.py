"""Deep joint source-channel coding: channel models, metrics, the adaptive-rate
JSCC model, its training and evaluation, the registry-fetched model zoo, and the
digital link it is compared with (``jscc.digital``: separate source and channel coding).

This package knows nothing of ``stream``; ``dynbg`` and ``interp`` may use its
``metrics`` and ``zoo`` modules.
"""

# the shipped weights (jscc/weights/<name>.pt) the pipeline uses unless told otherwise;
# why this one: docs/results/jscc/wide.md
DEFAULT_MODEL = "wide"
