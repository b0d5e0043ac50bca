# syntax=docker/dockerfile:1
# Production image: `synergyhub serve` as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml constraints.txt README.md ./
COPY core ./core
COPY plugins ./plugins
COPY themes ./themes
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -c constraints.txt . \
 && cp -r themes /opt/themes

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 synergyhub
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/themes /app/themes
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ENV=production \
    SYNERGYHUB_THEMES_DIR=/app/themes \
    SYNERGYHUB_BIND=0.0.0.0:8080
WORKDIR /app
USER synergyhub
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["synergyhub", "serve"]
