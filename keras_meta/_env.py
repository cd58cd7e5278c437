"""Process-wide set-up before TensorFlow is imported: keep its start-up noise quiet.

TensorFlow 2.21 writes C++ start-up messages (oneDNN, CUDA probing) straight to file
descriptor 2 before its log level applies. Importing keras-meta installs an import hook that
runs TensorFlow's own import, whenever it first happens, with that descriptor pointed at
/dev/null; keras-meta itself imports TensorFlow only when a part that needs it is used, so
commands such as ``keras-meta serve --backend=onnx`` never load it. Set
``KERAS_META_TF_LOGS=1`` to see the messages.
"""

import importlib.abc
import importlib.machinery
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _QuietLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` with file descriptor 2 silenced."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            self._loader.exec_module(module)
            module.config.list_physical_devices()  # the CUDA probe logs here, once
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` like the default path finder, with a quiet loader; once."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


if (os.environ.get("KERAS_META_TF_LOGS") != "1" and "tensorflow" not in sys.modules
        and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path)):
    sys.meta_path.insert(0, _QuietTensorFlowFinder())
