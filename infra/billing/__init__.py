"""The billing product: the Stripe webhook and ledger, and the billing operations around it."""
