# tnl-serve for GPU nodes. Build: docker build -t tnl-serve .
# Run:   docker run --gpus all -p 8000:8000 -p 50051:50051 tnl-serve
#        (serves the bundled default model; mount another checkpoint and pass --model)
#
# Stage 1 builds with the CUDA toolkit and distribution packages only (tools/setup.sh);
# stage 2 carries the binaries, the non-system libraries they link (collected with ldd,
# as tools/bundle_gpu.sh does for the lent GPU machines) and the default model.
ARG CUDA_VERSION=13.0.0
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build
ARG TNL_CUDA_ARCHS=90a
ENV TNL_CUDA_ARCHS=${TNL_CUDA_ARCHS}
WORKDIR /src
COPY . .
RUN bash tools/setup.sh && bash tools/build.sh \
 && mkdir -p /opt/tnl/bin /opt/tnl/lib \
 && cp build/server/tnl-server build/tools/tnl-generate build/tools/tnl-eval /opt/tnl/bin/ \
 && for b in /opt/tnl/bin/*; do ldd "$b" | awk '/=> \//{print $3}'; done | sort -u \
    | grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|libcuda|libcublas|libcublasLt|libcudart|libnccl)\.so' \
    | xargs -r -I{} cp -L {} /opt/tnl/lib/ \
 && cp -r models /opt/tnl/models

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04
# The CUDA runtime image already carries cudart, cuBLAS and NCCL.
RUN apt-get update && apt-get install -y --no-install-recommends curl libgomp1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/tnl /opt/tnl
ENV LD_LIBRARY_PATH=/opt/tnl/lib:${LD_LIBRARY_PATH}
ENV PATH=/opt/tnl/bin:${PATH}
EXPOSE 8000 50051
HEALTHCHECK --interval=15s --timeout=3s CMD curl -fsS http://127.0.0.1:8000/health || exit 1
# SIGTERM drains in-flight requests (see docs/operations.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "-c", "exec tnl-server --model \"${TNL_MODEL:-$(ls -d /opt/tnl/models/*/ | head -n 1)}\" --host 0.0.0.0 --port 8000 --grpc-port 50051 \"$@\"", "--"]
