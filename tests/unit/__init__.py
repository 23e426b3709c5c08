"""unit tests (see tests/conftest.py for what each directory holds)."""
