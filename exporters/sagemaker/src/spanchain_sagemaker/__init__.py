"""SageMaker exporter for spanchain."""
