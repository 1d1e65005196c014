# syntax=docker/dockerfile:1
# Wharf: one process, one data directory (the volume /data). Build: docker build -t wharf .
# Run:   docker run -p 5000:5000 -v wharf-data:/data wharf
# README "Running the container image": mounting a config, environment, volumes, the healthcheck.

FROM node:20-bookworm-slim AS build
# better-sqlite3 builds from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, from the manifest and lock file alone: this layer is rebuilt only when they change,
# not on every source edit. --ignore-scripts skips our own `prepare` (the sources are not here yet);
# the rebuild then runs the install script of the one dependency that has native code.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
# The image's settings live in a config file, never in WHARF_* variables: a variable would beat the
# `listen` and `storage.path` of a config file mounted over this one. WHARF_CONFIG only says which file.
ENV NODE_ENV=production \
    WHARF_CONFIG=/etc/wharf/wharf.yaml
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
# The dashboard's page, script and style sheet, served as they are (src/http/routes/dashboard.ts).
COPY dashboard ./dashboard
COPY config/container.yaml /etc/wharf/wharf.yaml
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 5000
# Reads the same configuration as serve (WHARF_CONFIG, WHARF_* variables) and asks /healthz on the port it
# listens on. A --config or --listen given to serve on the command line is not seen here: pass the same
# to the healthcheck (docker run --health-cmd), or use a mounted file or WHARF_* variables instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["node", "--max-semi-space-size=2", "/app/bin/wharf.js", "healthcheck"]
# SIGTERM (docker stop) lets in-flight requests finish before the process exits.
STOPSIGNAL SIGTERM
# --max-semi-space-size: see bin/wharf.js.
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/bin/wharf.js"]
CMD ["serve"]
