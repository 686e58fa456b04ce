"""The LangChain side: callbacks become spans (handler, run registry, context scope, attributes, metrics, global instrumentation)."""
