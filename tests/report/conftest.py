from tests.review.results_fixture import results, shared_results  # noqa: F401
