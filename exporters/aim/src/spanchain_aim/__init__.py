"""Aim exporter for spanchain."""
