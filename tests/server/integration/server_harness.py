"""Starts the real tnl-server binary on free loopback ports and talks to it with
stdlib clients (http.client; raw sockets where the test needs the bytes)."""
import http.client
import json
import os
import signal
import socket
import subprocess
import time

SERVER_BIN = os.environ.get("TNL_SERVER_BIN", "")
MAKE_MODEL_BIN = os.environ.get("TNL_MAKE_TEST_MODEL_BIN", "")
SOURCE_DIR = os.environ.get("TNL_SOURCE_DIR", "")
WORK_DIR = os.environ.get("TNL_TEST_WORK_DIR", "/tmp/tnl-server-tests")
# The backend the servers run on: cpu in CI; tools/device_check.sh runs some of
# these tests with cuda on the GPU machine.
DEVICE = os.environ.get("TNL_TEST_DEVICE", "cpu")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_test_model(seed=7, name="tiny-model"):
    """A tiny random checkpoint with a real SentencePiece tokenizer (built once per seed)."""
    out = os.path.join(WORK_DIR, name)
    if not os.path.exists(os.path.join(out, "tokenizer.model")):
        os.makedirs(WORK_DIR, exist_ok=True)
        subprocess.run([MAKE_MODEL_BIN, "--out", out, "--tokenizer-corpus",
                        os.path.join(SOURCE_DIR, "tests/data/tokenizer_corpus.txt"),
                        "--layers", "2", "--dim", "32", "--heads", "2", "--vocab", "512", "--seed", str(seed)],
                       check=True, capture_output=True)
    return out


class Server:
    def __init__(self, model, *extra_args, grpc=False, preexec_fn=None, env=None):
        self.port = free_port()
        self.grpc_port = free_port() if grpc else -1
        args = [SERVER_BIN, "--model", model, "--host", "127.0.0.1", "--port", str(self.port),
                "--grpc-port", str(self.grpc_port), "--device", DEVICE, "--threads", "1",
                "--served-model-name", "tiny", *extra_args]
        self.log_path = os.path.join(WORK_DIR, f"server-{self.port}.log")
        self.log = open(self.log_path, "wb")
        proc_env = dict(os.environ, **env) if env else None
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn,
                                     env=proc_env)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tnl-server exited with {self.proc.returncode}: {self.read_log()}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("tnl-server did not become healthy: " + self.read_log())

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def connection(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """Returns (status, headers, parsed JSON or text)."""
        conn = self.connection(timeout)
        try:
            data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
            conn.request(method, path, body=data, headers=headers or {"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read().decode()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = raw
            return resp.status, dict(resp.getheaders()), payload
        finally:
            conn.close()

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def stream(self, path, body, headers=None):
        """Streams an SSE response; returns (status, list of parsed chunks, saw_done)."""
        conn = self.connection()
        try:
            conn.request("POST", path, body=json.dumps(body), headers=headers or {"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                return resp.status, json.loads(resp.read()), False
            chunks, done = parse_sse(resp.read().decode())
            return resp.status, chunks, done
        finally:
            conn.close()

    def metric(self, name):
        _, _, text = self.request("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def terminate(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def parse_sse(text):
    """`data: {...}\\n\\n` events → (chunks, saw [DONE] last). Asserts the framing."""
    chunks, done = [], False
    assert text.endswith("\n\n"), repr(text[-40:])
    for event in text.split("\n\n")[:-1]:
        assert event.startswith("data: "), repr(event)
        assert not done, "data after [DONE]"
        payload = event[len("data: "):]
        if payload == "[DONE]":
            done = True
        else:
            chunks.append(json.loads(payload))
    return chunks, done


def stream_text(chunks, chat=False):
    """Concatenated text per choice index."""
    texts = {}
    for c in chunks:
        for choice in c["choices"]:
            piece = choice["delta"].get("content", "") if chat else choice["text"]
            texts[choice["index"]] = texts.get(choice["index"], "") + (piece or "")
    return texts
