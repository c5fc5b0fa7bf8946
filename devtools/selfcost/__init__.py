"""`make bench`, issue 7 (self-cost): the deployment's own monthly AWS bill, computed from the AWS
requests the real handlers make during a simulated month on the embedded AWS, and each stack's fixed
monthly charges, counted from its synthesized template.

How the figures are made (`python -m devtools.selfcost`, `--json` for the bench driver; `--smoke`
runs every scenario through the same code for the first SMOKE.days days only, with fewer sampled
customer groups: a test that the bench still runs, whose figures are not a month's):

- The app's three stacks (FinOpsGuard-<stage>-Core, -Costs, -Billing; infra/stacks.py) are
  synthesized in-process with cdk.json's default context (template.py). The simulation reads the
  three templates merged (logical ids are unique across them): memory sizes, schedules, retry
  attempts, environment variables and topics, never restated here. Each stack's fixed charges
  (alarm metrics, composite alarms, dashboards, KMS keys, secrets, SQS event sources' idle polling)
  are counted from its own template; every other resource type has no monthly charge of its own.
- November 2026 is simulated on the embedded AWS (moto server) with the chat recorder and a
  loopback Stripe. Every handler runs through its Lambda entry point (`load_handler`), at the times
  its schedule (expanded from the template) fires. A botocore hook on every client counts each AWS
  request and converts it to billable units from the real requests and responses (metering.py,
  dynamodb.py: DynamoDB request units from item sizes, SMS segments from the text, e-mail
  recipients, custom events...).
- Lambda (lambdas.py): one request per invocation; GB-seconds = the template's memory x this
  machine's handler duration rounded up to 1 ms (standing in for Lambda's), plus the INIT phase of
  cold starts (billed since 1 Aug 2025), measured as a fresh interpreter importing the function's
  handler.py. A failed asynchronous event is retried as its EventInvokeConfig says, then sent to the
  core's failure queue.
- Each function is its own container: the secrets module's caches are kept per function, cleared
  on a cold start. Scheduled runs start cold; the webhook's containers follow its arrival times.
- Custom metrics are billed per metric (namespace, name, dimensions) per hour it is sent in: a
  function's Powertools metrics carry its `service` dimension; the stage-level ChatDeliveryFailures
  {stage} is one metric for every function that sends it.
- Money is Decimal throughout; prices live in prices.PRICES, one table, with their sources.
- Cost Explorer answers come from the synthetic organisation (finops_guard.costs.mock_data), queued on
  the embedded Cost Explorer in the order each run asks (CostAnswers); Cost Optimization Hub, which
  moto lacks, is answered by botocore's Stubber, the Savings Plans reads by a before-call handler.

Scenario A (scenarios_costs.py): the cost product for one account, cdk.json's defaults: attribution
by tag:Team and tag:CostCenter (the weekly report's extra request per dimension, the monthly
chargeback on the 1st: a request, a CSV and a pre-signed link per dimension), no team routed.
"A without attribution": the same month with the attribution variables emptied and no chargeback,
to price attribution (not deployable: attributionDimensions takes 1 to 3). Scenario C: A with the
opt-in savings recommendations and Savings Plans KPI (a second synthesis with them on, and the
opt-in dashboards, which are priced from it). "billing-idle" (scenarios_billing.py): the billing
stack deployed and never hearing from Stripe (hourly dunning sender, daily reconciliation, weekly
export). Scenario B: A's report workloads with two teams routed to their own channels, plus 10,008
Stripe events a month (139 customer groups of devtools.billing_month's month), of which 14 groups
(1,008 events) go through the webhook and are weighted to the month; the ledger is then replicated
to full size for the reconciliation, export and admin calls. Stripe's own fees are not AWS cost and
are left out. Each configuration's month starts from empty report state.

Deployments judged (run.DEPLOYMENTS): core + costs with the defaults (fixed <= $1.50, scenario A's
usage <= $0.50), and everything with scenario B's traffic (fixed <= $3.50, usage reported).
"""
