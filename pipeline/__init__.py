"""docintel: documents in, evidence-indexed risk sentences out.

Importing this package must stay cheap and must not import TensorFlow or torch: TensorFlow's GPU
memory settings have to be applied before it first touches a GPU, so stages import their
framework inside ``warm_up``.
"""

__version__ = "0.1.0"
