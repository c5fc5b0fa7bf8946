"""The stack deployed into the payer (management) account: FinOpsGuard-<stage>-PayerAccess."""
