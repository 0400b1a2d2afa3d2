"""Fine-tuning, evaluation and quantization of the risk classifier."""
