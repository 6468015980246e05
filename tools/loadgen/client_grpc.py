"""gRPC client for tnl.v1.Generation (grpc.aio). The message classes are generated
at run time with protoc from proto/tnl/v1/generate.proto into a cache directory
(no generated code in the repository); the calls are made with the channel's
generic unary_unary / unary_stream and the classes' own serializers."""
import asyncio
import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time

import grpc

from records import RequestResult

perf = time.perf_counter
SERVICE = "/tnl.v1.Generation/"
DEFAULT_PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "tnl", "v1",
                             "generate.proto")


def load_messages(proto_path=DEFAULT_PROTO):
    """Imports generate_pb2, compiling it once per proto content and protoc version."""
    proto_path = os.path.abspath(proto_path)
    protoc = shutil.which("protoc")
    if not protoc:
        raise RuntimeError("--protocol grpc needs protoc (Debian: protobuf-compiler) to compile " + proto_path)
    with open(proto_path, "rb") as f:
        source = f.read()
    version = subprocess.run([protoc, "--version"], capture_output=True, text=True).stdout.strip()
    key = hashlib.sha256(source + version.encode()).hexdigest()[:16]
    cache_root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    out_dir = os.path.join(cache_root, "tnl-loadgen", "proto-" + key)
    module_path = os.path.join(out_dir, "generate_pb2.py")
    if not os.path.exists(module_path):
        os.makedirs(os.path.dirname(out_dir), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=os.path.dirname(out_dir))
        include = os.path.dirname(proto_path)
        subprocess.run([protoc, f"-I{include}", f"--python_out={tmp}", proto_path], check=True)
        try:
            os.rename(tmp, out_dir)  # atomic: concurrent runs never import a half-written file
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another run got there first
    spec = importlib.util.spec_from_file_location("tnl_loadgen_generate_pb2", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class GrpcClient:
    """Same interface as HttpClient.send/count_tokens/close, over one or more
    channels (HTTP/2 connections), calls spread round-robin."""

    def __init__(self, host, port, *, api_key="", endpoint="completions", stream=True, params=None,
                 request_timeout=600.0, channels=1, proto_path=DEFAULT_PROTO):
        self.pb = load_messages(proto_path)
        self.endpoint = endpoint
        self.stream = stream
        self.params = dict(params or {})
        self.request_timeout = request_timeout
        self.metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self.live_events = [0]
        target = f"{host}:{port}"
        # A local subchannel pool per channel: otherwise channels share one connection.
        self.channels = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
                         for _ in range(max(1, channels))]
        pb = self.pb
        self._stream_calls = [ch.unary_stream(SERVICE + "GenerateStream",
                                              request_serializer=pb.GenerateRequest.SerializeToString,
                                              response_deserializer=pb.GenerateStreamResponse.FromString)
                              for ch in self.channels]
        self._unary_calls = [ch.unary_unary(SERVICE + "Generate",
                                            request_serializer=pb.GenerateRequest.SerializeToString,
                                            response_deserializer=pb.GenerateResponse.FromString)
                             for ch in self.channels]
        self._tokenize = self.channels[0].unary_unary(SERVICE + "Tokenize",
                                                      request_serializer=pb.TokenizeRequest.SerializeToString,
                                                      response_deserializer=pb.TokenizeResponse.FromString)
        self._info = self.channels[0].unary_unary(SERVICE + "GetModelInfo",
                                                  request_serializer=pb.GetModelInfoRequest.SerializeToString,
                                                  response_deserializer=pb.ModelInfo.FromString)
        self._next = 0

    def _request(self, spec):
        pb = self.pb
        sampling = {k: self.params[k] for k in ("temperature", "top_p", "top_k", "seed") if k in self.params}
        req = pb.GenerateRequest(max_tokens=spec.max_tokens, ignore_eos=bool(self.params.get("ignore_eos")),
                                 sampling=pb.SamplingParams(**sampling))
        if self.params.get("model"):
            req.model = self.params["model"]
        if spec.messages is not None:
            req.chat.messages.extend(pb.ChatMessage(role=m["role"], content=m["content"]) for m in spec.messages)
        else:
            req.text = spec.prompt
        return req

    async def send(self, spec):
        result = RequestResult(spec.session, spec.turn, perf())
        i = self._next = (self._next + 1) % len(self.channels)
        req = self._request(spec)
        try:
            if self.stream:
                await self._read_stream(self._stream_calls[i](req, metadata=self.metadata,
                                                              timeout=self.request_timeout), result)
            else:
                resp = await self._unary_calls[i](req, metadata=self.metadata, timeout=self.request_timeout)
                result.text = resp.text
                result.output_tokens = resp.usage.completion_tokens
                result.prompt_tokens = resp.usage.prompt_tokens
                result.ok = True
        except grpc.aio.AioRpcError as e:
            code = e.code()
            result.error = "timeout" if code == grpc.StatusCode.DEADLINE_EXCEEDED else f"grpc_{code.name}"
        result.t_end = perf()
        return result

    async def _read_stream(self, call, result):
        pieces, last, finished = [], None, False
        try:
            async for msg in call:
                t = perf()
                self.live_events[0] += 1
                if msg.text:
                    pieces.append(msg.text)
                    if last is None:
                        result.t_first = t
                    else:
                        result.gaps.append(t - last)
                    last = t
                if msg.HasField("usage"):
                    result.output_tokens = msg.usage.completion_tokens
                    result.prompt_tokens = msg.usage.prompt_tokens
                if msg.finish_reason:
                    finished = True
        except asyncio.CancelledError:
            call.cancel()  # end of run: the server frees the slot
            raise
        result.text = "".join(pieces)
        if not result.output_tokens:
            result.output_tokens = len(pieces)
        result.ok = finished
        if not finished:
            result.error = "stream_incomplete"

    async def count_tokens(self, text, add_special):
        resp = await self._tokenize(self.pb.TokenizeRequest(text=text, add_special_tokens=add_special),
                                    metadata=self.metadata, timeout=30)
        return len(resp.token_ids)

    async def model_info(self):
        info = await self._info(self.pb.GetModelInfoRequest(), metadata=self.metadata, timeout=10)
        return {f.name: v for f, v in info.ListFields()}

    async def close(self):
        for ch in self.channels:
            await ch.close()
