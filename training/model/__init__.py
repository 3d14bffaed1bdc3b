"""The networks, the marginal calibration applied after training, and the export of both graphs to ONNX."""

from training.model.calibration import Calibration, calibrate
from training.model.export import export_model, library_versions

__all__ = ["Calibration", "calibrate", "export_model", "library_versions"]
