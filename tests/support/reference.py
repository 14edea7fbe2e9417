"""Where the shared reference files are: ``../shared/reference`` beside the checkout, or
``$FANET_REFERENCE_DIR`` (Python 3.6 compatible: device tests import it)."""

import os

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFERENCE_DIR = os.environ.get(
    "FANET_REFERENCE_DIR", os.path.join(os.path.dirname(CHECKOUT), "shared", "reference")
)
