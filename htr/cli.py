"""The console scripts of pyproject.toml's [project.scripts], each the `main` of one module.

Several `main`s return what they computed (a `Result`, a `Comparison`, written paths) so that tests and
notebooks can use it; a console script hands `main()`'s value to `sys.exit`, which would print such an
object and exit 1. These wrappers keep integer exit codes and drop the rest. Modules are imported on
call, so `htr-predict --help` does not load every other entry point's dependencies.
"""

from collections.abc import Callable
from importlib import import_module


def _script(module: str) -> Callable[[], None]:
    """A console script running `module.main()` with the process's arguments."""

    def run() -> None:
        status = import_module(module).main()
        if isinstance(status, int) and status:
            raise SystemExit(status)

    run.__doc__ = f"`python -m {module}` as a console script."
    return run


train = _script("run_trocr")
predict = _script("htr.inference.predict")
report = _script("htr.evaluation.report")
compare = _script("htr.evaluation.compare")
publish = _script("htr.hub.publish")
pipeline = _script("htr.core.pipeline")
card = _script("htr.hub.card")
model = _script("htr.training.modeling")
data = _script("data_prep.presets")
demo = _script("htr.demo")
lineage = _script("htr.training.lineage")
