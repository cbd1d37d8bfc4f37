# ocrvault, the embedded default (`ocrvault serve`: API, workers and reaper in one process).
#
#   docker build -t ocrvault .                       # base: python:3.11-slim-bookworm
#   docker build --build-arg BASE_IMAGE=my-registry/debian-python:3.11 -t ocrvault .
#
# BASE_IMAGE is any Debian bookworm image with python3.11 and its venv module
# (python:3.11-slim-bookworm, or debian:bookworm-slim plus python3.11 and python3-venv);
# both stages use it, so the venv's interpreter path is the same in each. The build reaches
# a Debian mirror and PyPI; the running container needs no network besides its clients.
#
# Run it as compose.yaml does: read-only root, /data a volume, /tmp a tmpfs (the decode
# sandbox's forkserver puts its socket there), no capabilities. It serves plain HTTP on
# 0.0.0.0:8080 with --behind-proxy: publish the port on loopback only and let a TLS proxy
# front it, or mount a certificate and override the command (see README, "Deploy").
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Every dependency ships manylinux wheels (tesserocr bundles its libtesseract): no compiler.
# pip byte-compiles what it installs: the read-only image needs no .pyc written at run time.
RUN python3 -m venv /opt/ocrvault && /opt/ocrvault/bin/pip install .

FROM ${BASE_IMAGE}
# Tesseract's language data only: tesserocr's wheel carries libtesseract itself, and the
# engine finds /usr/share/tesseract-ocr/5/tessdata (the tesseract-ocr CLI is not needed).
ARG TESSERACT_LANGS="eng deu fra spa osd"
# DL3008: versions come from the base's Debian release; pins would break with each point release.
# hadolint ignore=DL3008
RUN set -- && for lang in ${TESSERACT_LANGS}; do set -- "$@" "tesseract-ocr-${lang}"; done \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 ocrvault \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data --no-log-init \
      --shell /usr/sbin/nologin ocrvault \
 && install -d -m 0700 -o 10001 -g 10001 /data /keyring
COPY --from=builder /opt/ocrvault /opt/ocrvault

# A new named volume takes /data's (and /keyring's) owner and 0700 mode from the image;
# ocrvault refuses a data dir that others may enter. TMPDIR: the only other place it writes.
ENV PATH=/opt/ocrvault/bin:$PATH \
    OCRVAULT_DATA_DIR=/data \
    OCRVAULT_HOST=0.0.0.0 \
    OCRVAULT_PORT=8080 \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('OCRVAULT_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["ocrvault"]
# The first start creates the tenant "default" and writes its admin key to
# /data/admin-key-<id>.txt (0600): stdout is no terminal here, and logs keep every line.
CMD ["serve", "--behind-proxy"]
