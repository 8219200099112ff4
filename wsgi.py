"""`FLASK_APP=wsgi` in a checkout (Makefile): the application of booking/wsgi.py."""

from booking.wsgi import app as app
