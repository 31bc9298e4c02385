# syntax=docker/dockerfile:1
# The tde-operator image: the operator (dist/src/main.js, the default command), the init-container
# agent (dist/src/agent/main.js, R26) and the kubectl-tde plugin (dist/src/cli/main.js).
#
#   docker build -t ghcr.io/tde-dev/tde-operator:0.1.0 .
#
# The runtime is distroless Node.js 20 as the nonroot user (uid/gid 65532): no shell, no package
# manager, only the production dependencies. It runs under a read-only root filesystem.

ARG NODE_VERSION=20

# 1. Compile TypeScript with every dependency.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Only the production dependencies.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /src
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# 3. The runtime.
FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
# V8 sizes its heap from the machine's memory unless told: a young generation of 2 MiB semi-spaces
# and a 192 MiB old-space limit, three quarters of the chart's 256Mi memory limit (Node's advice:
# the rest of the process, about 70 MiB, must fit beside the heap). V8 lets the old generation grow
# past its live set by a factor that falls with the limit, so this limit is what keeps 30,000
# databases at 254 MiB (300 at a 256 MiB limit; bench/README.md, #21); the heap in use peaks at
# about 150 MiB there. A fleet that needs more heap needs a larger memory limit: set both
# (docs/operating.md).
# glibc gives each thread that allocates its own arena (up to 8 per core); two keep the
# resident set of libuv's and V8's threads near what they use (2-10 MiB less at 10,000 databases).
# The chart and deploy/base set the same (test/unit/project/runtime-env.test.ts).
ENV NODE_ENV=production \
    NODE_OPTIONS="--enable-source-maps --max-semi-space-size=2 --max-old-space-size=192" \
    MALLOC_ARENA_MAX=2
# package.json carries "type": "module", which the compiled ESM needs.
COPY --from=deps --chown=65532:65532 /src/package.json ./package.json
COPY --from=deps --chown=65532:65532 /src/node_modules ./node_modules
COPY --from=build --chown=65532:65532 /src/dist/src ./dist/src
COPY --chown=65532:65532 crds ./crds
USER 65532:65532
EXPOSE 8080
# The image's entrypoint is node; the agent runs with
#   command: ["/nodejs/bin/node", "/app/dist/src/agent/main.js", "unwrap", ...]
CMD ["/app/dist/src/main.js"]

LABEL org.opencontainers.image.title="tde-operator" \
      org.opencontainers.image.description="Transparent data encryption with customer-managed keys for databases on Kubernetes" \
      org.opencontainers.image.source="https://github.com/tde-dev/tde-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
