"""Process-wide defaults set before TensorFlow is imported: quiet C++ logs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
