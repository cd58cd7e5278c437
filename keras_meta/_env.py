"""Process-wide set-up done before TensorFlow is imported: keep its start-up noise quiet.

TensorFlow 2.21 writes C++ start-up messages (oneDNN, CUDA probing) straight to file
descriptor 2 before its log level applies, so the import runs with that descriptor pointed at
/dev/null. Set ``KERAS_META_TF_LOGS=1`` to see them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ.get("KERAS_META_TF_LOGS") != "1":
    _saved = os.dup(2)
    _null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(_null, 2)
        import tensorflow as _tf

        _tf.config.list_physical_devices()  # the CUDA probe logs here, once
    finally:
        os.dup2(_saved, 2)
        os.close(_saved)
        os.close(_null)
