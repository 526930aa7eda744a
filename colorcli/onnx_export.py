"""The old import path of ``colorcli.onnx.export`` (kept for code that still imports it)."""

from __future__ import annotations

from colorcli.onnx.export import CHECK_TOLERANCE, OPSET, ExportResult, export_onnx

__all__ = ["CHECK_TOLERANCE", "OPSET", "ExportResult", "export_onnx"]
