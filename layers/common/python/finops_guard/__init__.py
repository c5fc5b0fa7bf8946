"""FinOps Guard shared library: domain logic and AWS/chat adapters, shipped as a Lambda layer."""

__version__ = "0.1.0"

import logging

# Registered up front so a handler can hand its log configuration to every finops_guard.* logger.
logging.getLogger(__name__).addHandler(logging.NullHandler())
