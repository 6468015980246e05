"""What one request asks for and what happened to it (shared by the clients, the
runner and the report)."""
from dataclasses import dataclass, field


@dataclass
class RequestSpec:
    """One request of a session. Exactly one of prompt (completions) and messages
    (chat) is set."""
    session: int
    turn: int  # 1-based turn index within its conversation
    max_tokens: int
    prompt: str = None
    messages: list = None


@dataclass
class RequestResult:
    session: int
    turn: int
    t_start: float  # perf_counter when the request was issued (before connecting)
    t_first: float = None  # first chunk that carried text (streaming only)
    t_end: float = None
    ok: bool = False
    error: str = None  # kind, e.g. "http_429", "connect_refused", "grpc_UNAVAILABLE"
    retry_after: float = None
    prompt_tokens: int = None  # from the server's usage, when it sent one
    output_tokens: int = 0
    gaps: list = field(default_factory=list)  # seconds between text-bearing chunks
    text: str = ""  # the generated text (multi-turn needs it for the next turn)
    warmup: bool = False  # its session started during the warm-up

    @property
    def ttft(self):
        return None if self.t_first is None else self.t_first - self.t_start

    @property
    def e2e(self):
        return None if self.t_end is None else self.t_end - self.t_start

    @property
    def tpot(self):
        """Mean time per output token after the first: (e2e − TTFT) / (tokens − 1)."""
        if self.t_first is None or self.t_end is None or self.output_tokens < 2:
            return None
        return (self.t_end - self.t_first) / (self.output_tokens - 1)
