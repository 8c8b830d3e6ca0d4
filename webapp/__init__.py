"""Switchboard's Django project: desired state, views, API and websockets. Never touches the kernel."""
