"""Build script for the one thing pyproject.toml cannot declare: the optional C extension.

``pykafka_ops.records._recordwalk`` walks a batch's records on the produce path (see
``pykafka_ops/records/record_walk.py``). It is optional: where it cannot be compiled the
install goes on and the pure-Python walker is used. Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pykafka_ops.records._recordwalk",
            sources=["pykafka_ops/records/_recordwalk.c"],
            optional=True,
        )
    ]
)
