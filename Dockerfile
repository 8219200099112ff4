# The app as a container: the wheel of this checkout installed into a slim Python image
# (runtime dependencies only, pinned by constraints.txt), run as a non-root user by gunicorn
# with the package's settings. compose.yaml runs it with the outbox worker, PostgreSQL and
# Redis (README "Containers"). Build: docker build -t telework-booking .

# --- build: the wheel (translations, migrations, seeds and settings are inside it)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml ./
COPY booking ./booking
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# --- run
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BOOKING_INSTANCE_DIR=/var/lib/booking/instance \
    GUNICORN_BIND=0.0.0.0:8000
# Uploads and (without MAIL_URL) .eml mail live in the instance folder: a volume.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/booking --create-home booking \
    && install -d -o booking -g booking /var/lib/booking/instance
COPY constraints.txt /tmp/constraints.txt
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt /tmp/dist/*.whl \
    && rm -rf /tmp/dist /tmp/constraints.txt
USER 10001:10001
WORKDIR /var/lib/booking
VOLUME ["/var/lib/booking/instance"]
EXPOSE 8000
# /healthz: the process is up (no database); the load balancer should ask /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
CMD ["gunicorn", "-c", "python:booking.gunicorn_conf", "booking.wsgi:app"]
