"""CloudWatch dashboards, opt-in (``dashboard: true``): each product stack adds its own.

A dashboard costs $3 a month beyond an account's first three, more than a small deployment's whole
fixed cost, so none is created by default. The widgets are hand-written, not cdk-monitoring-constructs:
the FinOps half is SEARCH over budget and currency dimensions and the invoice SLO ratio, custom
metric math that library has no facade for, and it would be one more jsii package pinned to an
aws-cdk-lib range.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.core.monitored_function import METRICS_NAMESPACE, MonitoredFunction
from infra.core.paging import CHAT_DELIVERY_METRIC, core_alarm_names

DAY = Duration.days(1)
HOUR = Duration.hours(1)
WEEK = Duration.days(7)
# Two weekly reports, fourteen budget-guard and reconciliation runs: every KPI has data when it opens.
DASHBOARD_RANGE = Duration.days(14)


def function_metric(
    function: MonitoredFunction, metric_name: str, *, statistic: str, period: Duration, label: str | None = None
) -> cloudwatch.Metric:
    """A metric the function emits; Powertools Metrics adds its name as the ``service`` dimension."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": function.short_name},
        statistic=statistic,
        period=period,
        label=label,
    )


def search_metric(metric_name: str, service: str, dimension: str, label: str) -> cloudwatch.MathExpression:
    """Every series of ``metric_name`` over ``dimension`` (budgets and currencies are data, not
    known at synth), one line each, labelled with the dimension's value."""
    schema = f"{{{METRICS_NAMESPACE},{dimension},service}}"
    return cloudwatch.MathExpression(
        expression=(
            f"SEARCH('{schema} MetricName=\"{metric_name}\" service=\"{service}\"', 'Maximum', {int(DAY.to_seconds())})"
        ),
        using_metrics={},
        period=DAY,
        label=f"{label} ${{PROP('Dim.{dimension}')}}",
    )


def chat_delivery_widget(stage: str) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title="Chat delivery failures, every posting function (per hour)",
        left=[
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=CHAT_DELIVERY_METRIC,
                dimensions_map={"stage": stage},
                statistic="Sum",
                period=HOUR,
                label="Failed deliveries",
            )
        ],
        left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
        width=8,
        height=6,
    )


def alarm_status_widget(
    scope: Construct, stage: str, alarms: Sequence[cloudwatch.IAlarm]
) -> cloudwatch.AlarmStatusWidget:
    """The product's alarms and the core's two, which page for every function."""
    core = [
        cloudwatch.Alarm.from_alarm_name(scope, f"CoreAlarm{index}", name)
        for index, name in enumerate(core_alarm_names(stage))
    ]
    return cloudwatch.AlarmStatusWidget(
        title="The core's and this product's alarms, most recently changed first",
        alarms=[*core, *dict.fromkeys(alarms)],
        sort_by=cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
        width=24,
        height=8,
    )


def function_health(function: MonitoredFunction) -> cloudwatch.GraphWidget:
    fn = function.function
    return cloudwatch.GraphWidget(
        title=function.function_name,
        left=[
            fn.metric_invocations(period=HOUR, statistic="Sum", label="Invocations"),
            fn.metric_errors(period=HOUR, statistic="Sum", label="Errors"),
            fn.metric_throttles(period=HOUR, statistic="Sum", label="Throttles"),
        ],
        right=[fn.metric_duration(period=HOUR, statistic="p99", label="Duration p99 (ms)")],
        left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
        width=8,
        height=6,
    )


def add_dashboard(
    scope: Construct, *, stage: str, product: str, sections: Sequence[tuple[str, Sequence[cloudwatch.IWidget]]]
) -> cloudwatch.Dashboard:
    """``FinOpsGuard-<stage>-<product>-<region>`` (dashboards are global: the region keeps two apart)."""
    dashboard = cloudwatch.Dashboard(
        scope,
        "Dashboard",
        dashboard_name=f"FinOpsGuard-{stage}-{product}-{Aws.REGION}",
        default_interval=DASHBOARD_RANGE,
        # Each widget keeps its own period: daily KPIs stay daily whatever the range.
        period_override=cloudwatch.PeriodOverride.INHERIT,
    )
    for title, widgets in sections:
        dashboard.add_widgets(cloudwatch.TextWidget(markdown=f"## {title}", width=24, height=1))
        for row in _rows(widgets):
            dashboard.add_widgets(*row)
    return dashboard


def _rows(widgets: Sequence[cloudwatch.IWidget]) -> list[list[cloudwatch.IWidget]]:
    """Split widgets into dashboard rows of at most 24 units."""
    rows: list[list[cloudwatch.IWidget]] = [[]]
    used: float = 0
    for widget in widgets:
        if used + widget.width > 24:
            rows.append([])
            used = 0
        rows[-1].append(widget)
        used += widget.width
    return rows
