"""The billing half's adapters: Stripe and the billing tables."""
