"""The muon sample service: everything needed at run time, and nothing from TensorFlow."""
