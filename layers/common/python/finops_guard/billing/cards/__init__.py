"""Finance channel cards (billing alerts, issued invoices); pure functions returning the webhook payload."""
