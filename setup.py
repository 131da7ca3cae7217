"""The one compiled part of dccd: the page scanner's fast path (dccd_cli/exchange/_pagescan.c).

Everything else is in pyproject.toml. The extension is optional: without a C compiler the
install still succeeds and dccd reads pages with the numpy scanner (dccd_cli/exchange/pagescan.py),
slower but with the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("dccd_cli.exchange._pagescan", ["dccd_cli/exchange/_pagescan.c"], optional=True,
                  extra_compile_args=["-O2"]),
    ],
)
