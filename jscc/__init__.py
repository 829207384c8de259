"""Deep joint source-channel coding: channel models, metrics, the adaptive-rate
JSCC model, its training and evaluation, and the registry-fetched model zoo.

This package knows nothing of ``stream``; ``dynbg`` and ``interp`` may use its
``metrics`` and ``zoo`` modules.
"""
