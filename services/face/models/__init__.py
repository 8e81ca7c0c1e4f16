"""The face models: converters from the weights in registry packages to ONNX, built at install."""
