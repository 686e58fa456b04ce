"""spanchain: LangChain runs as OpenTelemetry spans."""
