"""The cost product: weekly and team cards, budgets, anomalies, attribution and chargeback, savings."""
