"""Build glassnet's optional C kernels (src/glassnet/_native.c); metadata is in pyproject.toml.

`optional=True`: without a C compiler or Python headers the build is skipped with a warning
and glassnet runs on its NumPy code alone (`glassnet.native.available()` says which).
"""
import os

from setuptools import Extension, setup

_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]

setup(ext_modules=[] if os.environ.get("GLASSNET_NO_NATIVE") == "1" else [
    Extension("glassnet._native", sources=["src/glassnet/_native.c"],
              extra_compile_args=_FLAGS if os.name != "nt" else ["/O2"], optional=True),
])
