"""AWS CDK infrastructure of FinOps Guard."""
