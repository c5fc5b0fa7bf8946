"""The only modules that talk to AWS, Teams and Slack."""
