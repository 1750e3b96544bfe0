# The codeassist gateway (`server-kit gateway`): the only way in to the team's vLLM server.
#   docker build -t codeassist-server:latest .
# `server-kit launch --write-compose FILE` builds it from here (compose `build:`); keys, the pepper and the audit
# log live in the volume at /var/lib/codeassist-server (CODEASSIST_SERVER_DIR), so they outlive the container.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CODEASSIST_SERVER_DIR=/var/lib/codeassist-server

# A fixed non-root uid (USER below names it by number: resolvable without the image's /etc/passwd), so a
# volume's ownership is the same on every host.
RUN groupadd --system --gid 10001 codeassist \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/codeassist-server --create-home \
       --shell /usr/sbin/nologin codeassist

WORKDIR /src
# The package needs its four source folders and the README (its long description); .dockerignore keeps the rest out.
COPY pyproject.toml README.md ./
COPY client ./client
COPY lsp ./lsp
COPY context ./context
COPY server-kit ./server-kit
RUN pip install . && rm -rf /src

WORKDIR /var/lib/codeassist-server
USER 10001:10001
VOLUME ["/var/lib/codeassist-server"]
EXPOSE 8080

# /health answers 200 once the gateway serves and an upstream replica answers (503 while vLLM loads).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8080/health', timeout=2).status != 200)"]

ENTRYPOINT ["server-kit", "gateway"]
CMD ["--host", "0.0.0.0", "--port", "8080"]
