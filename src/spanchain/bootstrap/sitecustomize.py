"""Loaded by Python at start-up in programs started with `spanchain run` (this folder is put first
on their PYTHONPATH): configure tracing from OTEL_* variables and instrument LangChain, before the
app's own code runs. Never raises: a tracing problem is logged, the app runs untraced.

If another `sitecustomize` exists further down the path (a virtualenv's, opentelemetry-instrument's),
it is loaded afterwards, as it would have been without us.
"""


def _spanchain_bootstrap() -> None:
    import logging

    try:
        from spanchain.config.configure import configure_from_environment

        configure_from_environment()
    except Exception as exc:  # even an import failure must not stop the app
        logging.getLogger("spanchain").error("spanchain: tracing is OFF: %r", exc)


def _chain_next_sitecustomize() -> None:
    import importlib
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    this = sys.modules.get(__name__)
    saved_path = list(sys.path)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        del sys.modules[__name__]
        try:
            importlib.import_module("sitecustomize")
        except ImportError:
            pass
    except Exception as exc:
        import logging

        logging.getLogger("spanchain").warning("spanchain: the next sitecustomize failed: %r", exc)
    finally:
        sys.path[:] = saved_path
        if this is not None and "sitecustomize" not in sys.modules:
            sys.modules["sitecustomize"] = this


_spanchain_bootstrap()
_chain_next_sitecustomize()
