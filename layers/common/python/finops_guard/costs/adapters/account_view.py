"""Does the Cost Explorer we read see an organisation, or a single account?

A management (payer) account's Cost Explorer sees every member account; a member account's, or a
standalone account's, sees only itself. So: the caller (the identity Cost Explorer is called
with) is the organisation's management account -> organisation. Two free calls, made with the
same credentials as Cost Explorer: `organizations:DescribeOrganization` (IAM: that action, Resource
'*') and `sts:GetCallerIdentity` (needs no permission).
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)
NOT_IN_ORGANIZATION = "AWSOrganizationsNotInUseException"
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10)


def organisation_check(session: Any | None = None) -> bool | None:
    """`reads_organisation` with clients of `session` (default: the function's own credentials), which
    must be the credentials Cost Explorer is called with. Not asked through the payer's role: reading the
    payer is reading an organisation (costs/runtime.py), and that role holds cost reads only."""
    session = session or boto3.Session()
    # Organizations has one endpoint, in us-east-1, as Cost Explorer does.
    organizations = session.client("organizations", region_name="us-east-1", config=_CONFIG)
    return reads_organisation(organizations, session.client("sts", config=_CONFIG))


def reads_organisation(organizations: Any, sts: Any) -> bool | None:
    """True: the caller is its organisation's management account. False: no organisation, or a
    member account. None: it could not be told (access denied, an outage): logged, never raised,
    since the weekly card must still go out."""
    try:
        organization = organizations.describe_organization()["Organization"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == NOT_IN_ORGANIZATION:
            return False
        log.warning(
            "could not tell organisation from single account; the breakdown stays LINKED_ACCOUNT "
            "(set the breakdown context key to choose)",
            extra={"error": error.response.get("Error", {}).get("Code")},
        )
        return None
    except BotoCoreError as error:
        log.warning("could not tell organisation from single account", extra={"error": type(error).__name__})
        return None
    try:
        caller = sts.get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as error:
        log.warning("could not read the caller's account", extra={"error": type(error).__name__})
        return None
    return bool(organization.get("MasterAccountId")) and organization.get("MasterAccountId") == caller
