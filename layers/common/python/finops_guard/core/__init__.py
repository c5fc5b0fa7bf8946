"""The foundation both products share: money, periods, chat delivery and card primitives, settings
helpers, the deploy-time custom resources, and the adapters both halves use. Never imports a half."""
