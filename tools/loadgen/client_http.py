"""HTTP/1.1 client for tnl-server's OpenAI API (/v1/completions, /v1/chat/completions).

Built on asyncio protocols rather than streams or threads so that one core can
follow thousands of SSE streams: each read is handled in one data_received call
that stamps the time once, decodes the chunked framing and splits SSE events;
JSON is parsed only when the response is complete. Connections are kept alive
and reused when idle for plain requests (/tokenize, /metrics); generation
requests open a fresh connection each (`Connection: close`), as independent
users would, unless keep_alive is set (an SDK's connection pool)."""
import asyncio
import errno
import json
import time

from records import RequestResult

perf = time.perf_counter

_HEAD, _BODY_LENGTH, _BODY_UNTIL_CLOSE, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _DONE = range(8)


class _StreamDigest:
    """A stream's SSE events, parsed in batches as they arrive: parsing each alone
    costs a json.loads call per event, parsing all at the end made a burst of work
    (and loop lag) whenever many streams ended together."""

    BATCH = 16

    def __init__(self, chat):
        self.chat = chat
        self.pending = []  # (arrival time, payload bytes) not parsed yet
        self.pieces = []
        self.t_first = self.t_last = None
        self.gaps = []
        self.usage = None
        self.error = None
        self.chunks = 0

    def flush(self):
        pending, self.pending = self.pending, []
        if not pending:
            return
        try:
            objects = json.loads(b"[" + b",".join(p for _, p in pending) + b"]")
            for (t, _), obj in zip(pending, objects):
                if "error" in obj:
                    self.error = "stream_error"
                    continue
                if obj.get("usage"):
                    self.usage = obj["usage"]
                for choice in obj.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content") if self.chat else choice.get("text")
                    if piece:
                        self.pieces.append(piece)
                        self.chunks += 1
                        if self.t_first is None:
                            self.t_first = t
                        else:
                            self.gaps.append(t - self.t_last)
                        self.t_last = t
        except (ValueError, AttributeError, TypeError):
            self.error = "bad_event"


class _Exchange:
    """Parses one response incrementally. `future` resolves to True once the
    response is complete, False if the connection ended first or it timed out."""

    def __init__(self, future, counter, chat=False):
        self.future = future
        self.counter = counter  # shared live count of SSE events (progress line)
        self.chat = chat
        self.state = _HEAD
        self.buf = b""  # received, not yet parsed
        self.status = 0
        self.headers = {}
        self.body = bytearray()
        self.sse = None  # bytes of a partial event, once the response is an event stream
        self.digest = None  # _StreamDigest, once the response is an event stream
        self.done_seen = False
        self.remaining = 0
        self.got_bytes = False
        self.timed_out = False
        self.t_done = None

    def feed(self, data):
        t = perf()
        self.got_bytes = True
        buf = self.buf + data if self.buf else bytes(data)
        pos, n = 0, len(buf)
        while pos < n or self.state == _DONE:
            state = self.state
            if state == _CHUNK_SIZE:
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    break
                size = _chunk_size(buf[pos:nl])
                end = nl + 2 + size
                if size and end + 2 <= n:  # the common case: a whole chunk is here
                    piece = buf[nl + 2:end]
                    pos = end + 2
                    # ... holding exactly one "data: ..." event: inlined, it is the hot path
                    if (self.sse == b"" and piece.startswith(b"data: ") and piece.endswith(b"\n\n")
                            and piece.find(b"\n\n") == size - 2 and piece != b"data: [DONE]\n\n"):
                        pending = self.digest.pending
                        pending.append((t, piece[6:-2]))
                        self.counter[0] += 1
                        if len(pending) >= _StreamDigest.BATCH:
                            self.digest.flush()
                    else:
                        self._deliver(piece, t)
                    continue
                pos = nl + 2
                self.remaining = size
                self.state = _CHUNK_DATA if size else _TRAILER
            elif state == _CHUNK_DATA:
                take = min(self.remaining, n - pos)
                self._deliver(buf[pos:pos + take], t)
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self.state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if n - pos < 2:
                    break
                pos += 2
                self.state = _CHUNK_SIZE
            elif state == _HEAD:
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    break
                self._parse_head(buf[pos:end])
                pos = end + 4
            elif state == _TRAILER:
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    break
                empty = nl == pos
                pos = nl + 2
                if empty:
                    self._complete(t)
            elif state == _BODY_LENGTH:
                take = min(self.remaining, n - pos)
                self._deliver(buf[pos:pos + take], t)
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self._complete(t)
            elif state == _BODY_UNTIL_CLOSE:
                self._deliver(buf[pos:], t)
                pos = n
            else:  # _DONE: bytes after the response would desynchronise the connection
                if pos < n:
                    self.headers["connection"] = "close"
                pos = n
                break
        self.buf = buf[pos:] if pos < n else b""

    def _parse_head(self, head):
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.state = _CHUNK_SIZE
        elif "content-length" in self.headers:
            self.remaining = int(self.headers["content-length"])
            self.state = _BODY_LENGTH
            if self.remaining == 0:
                self._complete(perf())
        else:
            self.state = _BODY_UNTIL_CLOSE
            self.headers["connection"] = "close"
        if self.status == 200 and self.headers.get("content-type", "").startswith("text/event-stream"):
            self.sse = b""
            self.digest = _StreamDigest(self.chat)

    def _deliver(self, piece, t):
        if self.sse is None:
            self.body += piece
            return
        if not self.sse and piece.endswith(b"\n\n") and piece.find(b"\n\n") == len(piece) - 2:  # one whole event
            self._event(piece[:-2], t)
            return
        sse = self.sse + piece
        start = 0
        while True:
            end = sse.find(b"\n\n", start)
            if end < 0:
                break
            self._event(sse[start:end], t)
            start = end + 2
        self.sse = sse[start:]

    def _event(self, event, t):
        if event.startswith(b"data:"):
            payload = event[5:].strip()
            if payload == b"[DONE]":
                self.done_seen = True
            else:
                self.digest.pending.append((t, payload))
                self.counter[0] += 1

    def _complete(self, t):
        self.state = _DONE
        self.t_done = t
        if not self.future.done():
            self.future.set_result(True)

    def ended(self):
        """The connection closed (or the request timed out) before completion."""
        if self.state == _BODY_UNTIL_CLOSE:
            self._complete(perf())
        elif not self.future.done():
            self.t_done = perf()
            self.future.set_result(False)


def _chunk_size(line):
    try:
        return int(line, 16)
    except ValueError:  # chunk extensions: "1a;name=value"
        return int(line.split(b";", 1)[0], 16)


class _Connection(asyncio.BufferedProtocol):
    """Reads into one buffer shared by all connections of a client: asyncio's
    default recv() allocates 256 KiB per read, which cost more than everything
    else together at 20k reads/s. Each read is consumed before the next one."""

    def __init__(self, shared):
        self.shared = shared
        self.transport = None
        self.exchange = None
        self.open = False

    def connection_made(self, transport):
        self.transport = transport
        self.open = True

    def get_buffer(self, sizehint):
        return self.shared

    def buffer_updated(self, nbytes):
        if self.exchange is not None:
            self.exchange.feed(self.shared[:nbytes])
        else:  # bytes nobody asked for: do not reuse this connection
            self.transport.close()

    def connection_lost(self, exc):
        self.open = False
        if self.exchange is not None:
            self.exchange.ended()


def connect_error_kind(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "connect_timeout"
    if isinstance(exc, OSError) and exc.errno in errno.errorcode:
        return "connect_" + errno.errorcode[exc.errno]
    return "connect_" + type(exc).__name__


class HttpClient:
    """One target (host, port). `send` runs one generation request and returns a
    RequestResult; `fetch` is a plain request for setup and /metrics."""

    def __init__(self, host, port, *, api_key="", endpoint="completions", stream=True, params=None,
                 request_timeout=600.0, connect_timeout=10.0, keep_alive=False):
        self.host, self.port = host, port
        self.endpoint = endpoint
        self.stream = stream
        self.params = dict(params or {})
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.keep_alive = keep_alive  # reuse connections for generation requests too
        self.auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        self.path = "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
        self.live_events = [0]
        self._idle = []
        self._read_buffer = memoryview(bytearray(256 * 1024))

    # -- connections -----------------------------------------------------------------
    async def _acquire(self, reuse=True):
        while reuse and self._idle:
            conn = self._idle.pop()
            if conn.open:
                return conn, True
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(loop.create_connection(
            lambda: _Connection(self._read_buffer), self.host, self.port),
                                         self.connect_timeout)
        return conn, False

    def _release(self, conn, exchange, reuse=True):
        if reuse and conn.open and exchange.state == _DONE and exchange.headers.get("connection", "").lower() != "close":
            self._idle.append(conn)
        elif conn.transport is not None:
            conn.transport.close()

    async def _exchange(self, request, timeout, reuse=True):
        """Writes request on a pooled (reuse) or fresh connection and waits for the
        response. Returns the _Exchange; raises on connect failure. A reused
        connection that the server had closed gets exactly one fresh retry."""
        loop = asyncio.get_running_loop()
        for _ in range(2):
            conn, reused = await self._acquire(reuse)
            ex = _Exchange(loop.create_future(), self.live_events, self.endpoint == "chat")
            conn.exchange = ex
            expiry = loop.call_later(timeout, self._expire, conn, ex)
            try:
                conn.transport.write(request)
                await ex.future
            except BaseException:
                conn.transport.close()  # cancelled (end of run): the server cancels the generation
                raise
            finally:
                expiry.cancel()
                conn.exchange = None
            self._release(conn, ex, reuse)
            if ex.state == _DONE or not reused or ex.got_bytes or ex.timed_out:
                return ex
        return ex

    @staticmethod
    def _expire(conn, ex):
        ex.timed_out = True
        ex.ended()
        conn.transport.close()

    def _request_bytes(self, method, path, body=b"", close=False):
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.auth}"
                + ("Connection: close\r\n" if close else "") +
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        return head.encode() + body

    async def fetch(self, method, path, obj=None, timeout=30.0):
        """(status, headers, body bytes); raises OSError/TimeoutError if unreachable."""
        body = json.dumps(obj).encode() if obj is not None else b""
        ex = await self._exchange(self._request_bytes(method, path, body), timeout)
        if ex.state != _DONE:
            raise ConnectionError("timed out" if ex.timed_out else "connection closed")
        return ex.status, ex.headers, bytes(ex.body)

    async def count_tokens(self, text, add_special):
        status, _, body = await self.fetch("POST", "/tokenize", {"content": text, "add_special": add_special})
        if status != 200:
            raise RuntimeError(f"/tokenize answered {status}: {body[:200]!r}")
        return json.loads(body)["count"]

    async def close(self):
        for conn in self._idle:
            conn.transport.close()
        self._idle.clear()

    # -- generation ------------------------------------------------------------------
    def _generation_body(self, spec):
        body = dict(self.params)
        body["max_tokens"] = spec.max_tokens
        if self.endpoint == "chat":
            body["messages"] = spec.messages
        else:
            body["prompt"] = spec.prompt
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return json.dumps(body).encode()

    async def send(self, spec):
        result = RequestResult(spec.session, spec.turn, perf())
        request = self._request_bytes("POST", self.path, self._generation_body(spec), close=not self.keep_alive)
        try:
            ex = await self._exchange(request, self.request_timeout, reuse=self.keep_alive)
        except (OSError, asyncio.TimeoutError) as e:
            result.error = connect_error_kind(e)
            result.t_end = perf()
            return result
        result.t_end = ex.t_done
        if ex.timed_out:
            result.error = "timeout"
        elif ex.status != 200:
            result.error = _http_error_kind(ex.status, ex.body)
            if "retry-after" in ex.headers:
                try:
                    result.retry_after = float(ex.headers["retry-after"])
                except ValueError:
                    pass
        elif ex.sse is not None:
            self._read_stream(ex, result)
        elif ex.state != _DONE:
            result.error = "closed_early"
        else:
            self._read_whole(ex, result)
        return result

    @staticmethod
    def _read_stream(ex, result):
        d = ex.digest
        d.flush()
        result.t_first, result.gaps, result.text = d.t_first, d.gaps, "".join(d.pieces)
        if d.usage:
            result.prompt_tokens = d.usage.get("prompt_tokens")
            result.output_tokens = d.usage.get("completion_tokens", 0)
        if not result.output_tokens:
            result.output_tokens = d.chunks  # no usage chunk: one text chunk ~ one token
        result.error = d.error
        if result.error is None:
            if ex.done_seen:
                result.ok = True
            else:
                result.error = "timeout" if ex.timed_out else "stream_incomplete"

    def _read_whole(self, ex, result):
        try:
            obj = json.loads(ex.body)
            choice = obj["choices"][0]
            result.text = (choice.get("message") or {}).get("content") or "" if self.endpoint == "chat" \
                else choice.get("text") or ""
            usage = obj.get("usage") or {}
            result.prompt_tokens = usage.get("prompt_tokens")
            result.output_tokens = usage.get("completion_tokens", 0)
            result.ok = True
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            result.error = "bad_response"


def _http_error_kind(status, body):
    """http_<status>, with the API's error code when it has one (e.g.
    http_400_context_length_exceeded) so that errors group by cause."""
    try:
        code = json.loads(body)["error"].get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        code = None
    return f"http_{status}_{code}" if code else f"http_{status}"
