# culprit in HTTP mode: `docker build -t culprit . && docker run -p 3000:3000 --env-file .env culprit`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    CULPRIT_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends git libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The CPU build of torch first, so the project's pin does not pull the CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY graph ./graph
COPY tools ./tools
COPY knowledge ./knowledge
RUN pip install .

RUN useradd --create-home --uid 10001 culprit && mkdir -p /data && chown culprit /data
USER culprit
VOLUME ["/data"]
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=3)"

CMD ["culprit", "serve", "--host", "0.0.0.0", "--port", "3000"]
