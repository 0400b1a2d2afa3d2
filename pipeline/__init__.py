"""docintel: documents in, evidence-indexed risk sentences out.

Importing this package must stay cheap and must not import TensorFlow or torch: TensorFlow's GPU
memory settings have to be applied before it first touches a GPU, so stages import their
framework inside ``warm_up``.
"""

import os

# transformers imports TensorFlow whenever it is installed, which would initialise TF (and map GPU
# memory) from a torch stage before the placement plan caps it. docintel never uses transformers' TF
# models, so switch that off for the whole process unless the user decided otherwise.
os.environ.setdefault("USE_TF", "0")

__version__ = "0.1.0"
