"""The WSGI application: `gunicorn -c python:booking.gunicorn_conf booking.wsgi:app`,
`flask --app booking.wsgi …`."""

from booking import create_app

app = create_app()
