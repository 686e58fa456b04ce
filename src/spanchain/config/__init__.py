"""Settings: environment variables (env.py), the resolver, `configure()` and its exit summary."""
