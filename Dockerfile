# CervixScope team demo: the dashboard on :8501 with the demo cohort, model comparison and demo
# reader study already built, so the container starts ready.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TORCH_HOME=/app/.torch \
    CERVIXSCOPE_DB=/app/state/cervixscope.db

RUN groupadd --system --gid 10001 cervix \
    && useradd --system --uid 10001 --gid cervix --create-home --home-dir /home/cervix cervix

WORKDIR /app

# The CPU build of torch (~200 MB) instead of PyPI's multi-GB CUDA build; the pins match requirements.txt.
COPY requirements.txt ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
    && pip install -r requirements.txt

COPY pyproject.toml README.md ./
COPY core ./core
COPY db ./db
COPY dashboard ./dashboard
COPY pages ./pages
COPY .streamlit/config.toml ./.streamlit/config.toml
COPY docker/entrypoint.sh /usr/local/bin/cervixscope-entrypoint
RUN pip install --no-deps -e . \
    && mkdir -p /app/state /app/seed /app/.torch \
    && chown -R cervix:cervix /app

USER 10001

# ImageNet weights and the demo (cohort, ingestion, comparison, demo study) are prepared at build
# time into a seed database that the entrypoint copies onto the volume on first start.
RUN python -m core.cli prefetch-weights \
    && CERVIXSCOPE_DB=/app/seed/cervixscope.db python -m core.cli demo --out /app/data/demo

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4).read() != b'ok')"]

ENTRYPOINT ["cervixscope-entrypoint"]
