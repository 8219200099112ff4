"""Entry point for gunicorn and `flask --app wsgi`."""

from booking import create_app

app = create_app()
