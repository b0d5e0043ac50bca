"""Tenancy: Solutions > Accounts > Groups, roles, scoped resources, the repository."""
