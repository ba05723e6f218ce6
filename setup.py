"""Build hook: the relay's optional compiled packet path (services/relay/_fastpath.c).

`optional=True`: where no C compiler or Python headers exist the build warns and the
package installs without it; services/relay/fastpath.py then uses the pure-Python path.
Everything else is declared in pyproject.toml.
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform.startswith("linux"):  # recvmmsg/sendmmsg
    ext_modules.append(
        Extension(
            "services.relay._fastpath",
            sources=["services/relay/_fastpath.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
