"""The alert forwarder: reads the job's ``alerts`` topic and notifies people once per alert id.

    python -m scripts.alerts forward [--max-messages N] [--idle-exit SECONDS]

Every new alert is printed as one line on stdout and, when configured, POSTed to
``ALERT_WEBHOOK_URL`` and published to ``ALERT_SNS_TOPIC_ARN``. The topic is at least once (a
replay of the job repeats alert ids); a ledger of ids (DynamoDB on AWS, SQLite locally) makes
the notifications once per id across restarts. See scripts/alerts/README.md.
"""

from scripts.alerts.ledger import LEDGER_KEY, LEDGER_TTL_ATTRIBUTE
from scripts.alerts.settings import ForwarderSettings

__all__ = ["LEDGER_KEY", "LEDGER_TTL_ATTRIBUTE", "ForwarderSettings"]
