"""ONNX Runtime inference for colorcli models, without torch (the ``onnx`` extra).

An exported model (``export.export_onnx``, ``colorcli export-onnx``) is the network alone:
L ``(B, 1, H, W)`` in [0, 100], H and W multiples of the model's size multiple (any, dynamic) ->
bin logits ``(B, Q, H/s, W/s)`` or tanh ab ``(B, 2, H/s, W/s)``. Everything else
``checkpoint.LoadedModel.predict_ab`` does travels as JSON in the ONNX ``metadata_props``
(key ``colorcli``): the kind, bins, decode method and temperature, input size, size multiple,
ab scale, and the sha256 of the model file it came from.

- ``format``: that metadata's format and checks, the sha256 of a model file, the cache folder
  (no onnxruntime, no torch).
- ``runtime``: ``OnnxModel`` (an ONNX Runtime session) and the numpy decode/resize steps it
  repeats from ``predict_ab`` (onnxruntime only, imported when a model opens).
- ``export``: torch model file -> ``.onnx`` (torch and the ``onnx`` package).
- ``backend``: which backend ``Colorizer.load`` uses (``choose``), and where a model file's
  ``.onnx`` twin is found or exported once into the cache (``find_twin``, ``ensure_twin``).

Importing this package imports none of its modules (and neither torch nor onnxruntime).
"""
