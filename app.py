#!/usr/bin/env python3
"""CDK entry point: builds the FinOps Guard app from the context in cdk.json and -c flags."""

import sys

from aws_cdk import App

from infra.config import ConfigError
from infra.stacks import create_stacks


def main() -> None:
    app = App()
    try:
        create_stacks(app)
    except ConfigError as error:
        sys.exit(f"FinOps Guard configuration error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
