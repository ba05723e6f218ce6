"""Parley's services: one package per service, plus the code they share (`common`)."""
