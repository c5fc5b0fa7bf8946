"""The FinOps Guard app: one stack per product on a small shared core.

- ``FinOpsGuard-<stage>-Core``: chat secrets, outbox, ops topic and failure paging, layers;
- ``FinOpsGuard-<stage>-Costs``: the cost product (infra/costs/);
- ``FinOpsGuard-<stage>-Billing``: the billing product (infra/billing/);
- ``FinOpsGuard-<stage>-PayerAccess``, only with ``-c payerAccess=true``: deployed into the payer
  (management) account, it lets a tooling account's cost functions read the payer's costs
  (infra/payer/).

A user deploys what they need by name (``npx cdk deploy FinOpsGuard-prod-Costs`` brings up the core
and the cost product), or ``--all``. Every resource carries the cost allocation tags, and the
AwsSolutions checks run over all three.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.billing.stack import BillingStack
from infra.config import FinOpsGuardConfig, load_config
from infra.core.stack import CoreStack
from infra.costs.stack import CostsStack
from infra.payer.stack import PayerAccessStack


@dataclass(frozen=True)
class FinOpsGuardStacks:
    core: CoreStack
    costs: CostsStack
    billing: BillingStack
    payer_access: PayerAccessStack | None = None  # in another account: never a dependency of the others

    @property
    def all(self) -> tuple[Stack, ...]:
        products: tuple[Stack, ...] = (self.core, self.costs, self.billing)
        return products if self.payer_access is None else (*products, self.payer_access)


def stack_name(stage: str, product: str) -> str:
    return f"FinOpsGuard-{stage}-{product}"


def resource_tags(config: FinOpsGuardConfig) -> dict[str, str]:
    """The cost allocation tags on every resource, so FinOps Guard's own cost shows under them."""
    return {
        "Project": "FinOpsGuard",
        "Environment": config.stage,
        "Owner": config.owner,
        "CostCenter": config.cost_center,
    }


def create_stacks(app: App) -> FinOpsGuardStacks:
    """Validate the context, build the stacks of the stage and register the AwsSolutions checks.

    Raises ``ConfigError`` before any construct is created when the context is invalid.
    """
    config = load_config(app.node)
    tags = resource_tags(config)
    core = CoreStack(app, stack_name(config.stage, "Core"), config=config)
    costs = CostsStack(app, stack_name(config.stage, "Costs"), config=config, tags=tags)
    billing = BillingStack(app, stack_name(config.stage, "Billing"), config=config, tags=tags)
    for product in (costs, billing):
        product.add_stack_dependency(core, "imports the core's exports and reads its layer parameters")
    # Only when asked: it is deployed into the payer account, so a `cdk deploy --all` in the tooling
    # account must not meet it.
    payer_access = (
        PayerAccessStack(app, stack_name(config.stage, "PayerAccess"), config=config) if config.payer_access else None
    )
    stacks = FinOpsGuardStacks(core=core, costs=costs, billing=billing, payer_access=payer_access)
    for stack in stacks.all:
        for key, value in tags.items():
            Tags.of(stack).add(key, value)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks
