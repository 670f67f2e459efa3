"""Reading lines with a trained model: predict, the predictions file, the ONNX backend, confidence and its calibration."""
