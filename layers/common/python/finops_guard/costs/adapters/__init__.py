"""The cost half's adapters: Cost Explorer, Cost Optimization Hub and its own tables."""
