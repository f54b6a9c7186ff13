# culprit in HTTP mode: `docker build -t culprit . && docker run -p 3000:3000 --env-file .env culprit`
#
# Two stages: `build` installs the locked dependencies (constraints.txt) into a virtual
# environment, in a layer that only pyproject.toml and constraints.txt invalidate, then the
# project on top; the final stage copies that environment alone, so pip's build
# environments and caches stay out of the image. The base is pinned to an exact release.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first: a change to the code reuses this layer (torch included).
COPY pyproject.toml constraints.txt ./
# The CPU build of torch, from PyTorch's index: the plain pin would pull the CUDA build.
RUN pip install --no-deps --index-url https://download.pytorch.org/whl/cpu "torch==$(sed -n 's/^torch==//p' constraints.txt)" \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -c constraints.txt -r requirements.txt

COPY README.md ./
COPY bot ./bot
COPY graph ./graph
COPY tools ./tools
COPY knowledge ./knowledge
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    CULPRIT_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends git libgomp1 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /opt/venv /opt/venv

RUN useradd --create-home --uid 10001 culprit && mkdir -p /data && chown culprit /data
USER culprit
WORKDIR /home/culprit
VOLUME ["/data"]
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=3)"

CMD ["culprit", "serve", "--host", "0.0.0.0", "--port", "3000"]
