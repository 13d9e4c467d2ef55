# One image for the web server, the RQ workers and the ticker:
#   docker build -t clientconnect-flow .
#   docker run -p 8000:8000 clientconnect-flow              (embedded: SQLite, in-process jobs)
#   docker compose up                                      (PostgreSQL + Redis + worker + ticker)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies and the package first, so editing bpmn/ or forms/ does not reinstall them.
# Built from a scratch folder: /app then holds only data, and imports resolve to site-packages.
COPY pyproject.toml README.md /tmp/src/
COPY app /tmp/src/app
COPY workers /tmp/src/workers
RUN pip install /tmp/src \
    && rm -rf /tmp/src

# The process models and their forms, read at deploy time (not part of the package).
COPY bpmn ./bpmn
COPY forms ./forms

RUN useradd --create-home --uid 10001 --user-group clientconnect \
    && mkdir -p /app/instance \
    && chown clientconnect:clientconnect /app/instance

# Installed, the package cannot find bpmn/, forms/ and instance/ next to itself: name them.
ENV CLIENTCONNECT_BPMN_DIR=/app/bpmn \
    CLIENTCONNECT_FORMS_DIR=/app/forms \
    CLIENTCONNECT_INSTANCE_DIR=/app/instance

USER clientconnect
VOLUME ["/app/instance"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

CMD ["clientconnect", "serve", "--host", "0.0.0.0", "--port", "8000"]
