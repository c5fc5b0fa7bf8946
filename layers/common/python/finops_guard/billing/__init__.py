"""The billing product: Stripe webhook and ledger, dunning, reconciliation, invoice bot, admin API."""
