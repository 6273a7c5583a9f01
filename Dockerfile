# One image for every coordbus service and the CLI; the service is picked at run time:
#   docker run -e COORDBUS_SERVICE=sentinel-subscriber -e REDIS_URL=redis://redis:6379 coordbus
#   docker run coordbus fanout-publisher            (the first argument works too)
#   docker run --rm coordbus cli coord --help       (the coordbus CLI)
# Prefer COORDBUS_SERVICE: the HEALTHCHECK below reads it to find the service's HTTP port.

# Node 22 LTS, the version package.json's engines and the README name. No `# syntax=` line: it
# would make BuildKit fetch a frontend image at build time; the built-in one handles --mount.
ARG NODE_IMAGE=node:22-bookworm-slim

# ---- deps: every dependency, with the toolchain better-sqlite3 needs when no prebuilt binary fits
FROM ${NODE_IMAGE} AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

# ---- build: compile apps/ and libs/ to dist/, then drop dev dependencies (keeping the native build)
FROM deps AS build
COPY tsconfig.json ./
COPY scripts ./scripts
COPY apps ./apps
COPY libs ./libs
COPY bin ./bin
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: slim, no compilers, code owned by root and only readable by the service user
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HTTP_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/scripts/container-entry.js ./scripts/
# The archivist's default SQLite directory; a volume is mounted here in compose and k8s.
RUN mkdir -p /data && chown node:node /data \
 && ln -s /app/bin/coordbus /usr/local/bin/coordbus
ENV ARCHIVIST_DATA_DIR=/data
# The `node` user of the base image (uid 1000): numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8081 8082 8083 8084 8085
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/scripts/container-entry.js", "healthcheck"]
# tini as PID 1 forwards SIGTERM to node and reaps the hook processes the job-coordinator spawns.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/scripts/container-entry.js"]
CMD []
