"""The test run's environment, set before Django's settings load (a pytest
plugin named in pyproject's addopts: -p tests.environment). Production
defaults stay as they are; only what a test rig needs is set here, and
only where the caller has not set it."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-" + "k" * 50)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")  # the test client speaks plain HTTP
