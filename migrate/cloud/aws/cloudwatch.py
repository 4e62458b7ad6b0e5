"""CloudWatch alarm state, for the optional traffic gate."""

from __future__ import annotations

import boto3

from migrate.cloud.aws.session import aws_errors, client
from migrate.errors import ProviderError


def alarm_state(session: boto3.Session, name: str, endpoint_url: str | None = None) -> str:
    """OK, ALARM or INSUFFICIENT_DATA. A missing alarm is an error: a gate that cannot be read must not pass."""
    cw = client(session, "cloudwatch", endpoint_url)
    with aws_errors("reading the CloudWatch alarm", where=f"alarm {name}"):
        alarms = cw.describe_alarms(AlarmNames=[name]).get("MetricAlarms", [])
    if not alarms:
        raise ProviderError(f"CloudWatch alarm {name} not found", where=f"alarm {name}",
                            hint="check traffic.cloudwatch_alarm and the region")
    return str(alarms[0]["StateValue"])
