"""Authorization: the Casbin model and reviewed policy, the guard, row scopes and field classes."""
