import sys

import pytest

from tests.review.results_fixture import results, shared_results  # noqa: F401


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest makes the app script the process's ``__main__`` and leaves it so;
    processes spawned later in the session (Dask workers) would re-import it. Put it back."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
