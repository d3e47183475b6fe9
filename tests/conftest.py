"""Shared fixtures. Requirement markers: ``@pytest.mark.req("R-7.1")`` (registered in pyproject)."""
