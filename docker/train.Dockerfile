# The training environment: prepare, train and export, CPU only.
#
# Build it with `invoke image`, which stages the build context (the pinned
# requirements, plus the host's pip certificate and local wheels when pip is set
# up to use them) and tags the image with the environment's hash. The project's
# code is not copied in: the runner mounts src/ read-only, so the container runs
# exactly the code of the checkout.

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder

# Host pip settings, forwarded so a build works behind a private mirror.
ARG PIP_INDEX_URL=""
ARG PIP_EXTRA_INDEX_URL=""
ARG PIP_TRUSTED_HOST=""
# torch's CPU wheels; on Linux, PyPI's torch is a multi-GB CUDA build. Empty when
# the staged context already holds the torch wheel.
ARG TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_INDEX_URL=${PIP_INDEX_URL} \
    PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    PIP_TRUSTED_HOST=${PIP_TRUSTED_HOST}

COPY docker/pip/ /tmp/pip/
COPY requirements/train.txt /tmp/requirements/train.txt

SHELL ["/bin/sh", "-eu", "-c"]
RUN python3 -m venv /opt/venv; \
    if [ -f /tmp/pip/ca.crt ]; then export PIP_CERT=/tmp/pip/ca.crt; fi; \
    if [ -z "${PIP_INDEX_URL}" ]; then unset PIP_INDEX_URL; fi; \
    if [ -z "${PIP_EXTRA_INDEX_URL}" ]; then unset PIP_EXTRA_INDEX_URL; fi; \
    if [ -z "${PIP_TRUSTED_HOST}" ]; then unset PIP_TRUSTED_HOST; fi; \
    /opt/venv/bin/python -m pip install --find-links /tmp/pip/wheels \
        ${TORCH_INDEX_URL:+--extra-index-url "${TORCH_INDEX_URL}"} \
        -r /tmp/requirements/train.txt

FROM ${BASE_IMAGE}

RUN useradd --create-home --uid 10001 --user-group coursedlc
COPY --from=builder /opt/venv /opt/venv

# Matplotlib needs a writable config folder whatever uid the container runs as.
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONPATH=/app/src \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1

# Numeric, so the host can resolve it; useradd above made this uid and gid.
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["python", "-m", "coursedlc"]
CMD ["--help"]
