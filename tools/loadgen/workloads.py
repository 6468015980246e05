"""What the requests say: prompts cut from a corpus to a token length drawn from a
distribution, a JSONL dataset of {prompt, max_tokens}, and multi-turn conversations
whose history grows each turn. Everything is built before the run starts, so that
the timed path only formats a request."""
import asyncio
import json
import random

from records import RequestSpec

TOKENS_PER_WORD_GUESS = 1.3  # English BPE; replaced by a measurement when the server can tokenize


class LengthDist:
    """A token count: "N" (fixed) or "A:B" (uniform integer in [A, B])."""

    def __init__(self, spec):
        self.spec = str(spec)
        lo, _, hi = self.spec.partition(":")
        self.lo = int(lo)
        self.hi = int(hi) if hi else self.lo
        if self.lo < 1 or self.hi < self.lo:
            raise ValueError(f"bad length {spec!r}: want N or A:B with 1 <= A <= B")

    def sample(self, rng):
        return self.lo if self.lo == self.hi else rng.randint(self.lo, self.hi)

    def __str__(self):
        return self.spec


class Corpus:
    """The words of a text file; windows wrap around its end."""

    def __init__(self, path):
        with open(path, encoding="utf-8", errors="replace") as f:
            self.words = f.read().split()
        if len(self.words) < 10:
            raise ValueError(f"corpus {path} has fewer than 10 words")
        self.path = path

    def window(self, start, n):
        words = self.words
        out = []
        while n > 0:
            piece = words[start:start + n]
            out.extend(piece)
            n -= len(piece)
            start = 0
        return " ".join(out)


class PromptSizer:
    """Cuts corpus windows to a target token count. With a count_tokens(text,
    add_special) coroutine (the server's tokenizer) it refines the word count a few
    times per prompt; without one it estimates words × 1.3."""

    MAX_TRIES = 4

    def __init__(self, corpus, count_tokens=None):
        self.corpus = corpus
        self.count_tokens = count_tokens
        self.tokens_per_word = TOKENS_PER_WORD_GUESS

    async def calibrate(self):
        if self.count_tokens is None:
            return
        sample = self.corpus.window(0, min(2000, len(self.corpus.words)))
        n = await self.count_tokens(sample, False)
        self.tokens_per_word = max(0.1, n / len(sample.split()))

    async def make(self, rng, target, add_special, start=None):
        if start is None:
            start = rng.randrange(len(self.corpus.words))
        n = max(1, round(target / self.tokens_per_word))
        if self.count_tokens is None:
            return self.corpus.window(start, n)
        best = None
        for _ in range(self.MAX_TRIES):
            text = self.corpus.window(start, n)
            got = await self.count_tokens(text, add_special)
            if best is None or abs(got - target) < abs(best[0] - target):
                best = (got, text)
            if got == target:
                break
            step = round(n * target / got) if got else 2 * n
            if step == n:
                step = n + (1 if got < target else -1)
            n = max(1, step)
        return best[1]


class Conversation:
    """One session: turn 1 is the first prompt; each later turn appends the reply
    and a new user message (completions: to the prompt text; chat: as messages)."""

    def __init__(self, user_texts, max_tokens, chat):
        self.user_texts = user_texts
        self.max_tokens = max_tokens
        self.chat = chat

    @property
    def turns(self):
        return len(self.user_texts)

    def first(self, session, tag=""):
        text = tag + self.user_texts[0]
        if self.chat:
            return RequestSpec(session, 1, self.max_tokens[0], messages=[{"role": "user", "content": text}])
        return RequestSpec(session, 1, self.max_tokens[0], prompt=text)

    def follow(self, spec, reply):
        """The next turn after spec got reply, or None after the last turn."""
        t = spec.turn  # index of the next user text (turns are 1-based)
        if t >= self.turns:
            return None
        new = self.user_texts[t]
        if self.chat:
            messages = spec.messages + [{"role": "assistant", "content": reply},
                                        {"role": "user", "content": new}]
            return RequestSpec(spec.session, t + 1, self.max_tokens[t], messages=messages)
        return RequestSpec(spec.session, t + 1, self.max_tokens[t], prompt=spec.prompt + reply + "\n" + new)


class Workload:
    """A pool of conversations built once; sessions take them in turn. When a run
    needs more sessions than the pool holds, a reused entry's first message gets a
    distinct "(k) " tag so that no two sessions send the same prompt (a prefix cache
    must not see repeats the operator did not ask for)."""

    def __init__(self, conversations, description):
        self.pool = conversations
        self.description = description

    def session(self, index):
        reuse, slot = divmod(index, len(self.pool))
        return self.pool[slot], (f"({reuse}) " if reuse else "")


async def build_corpus_workload(sizer, *, pool_size, turns, input_len, turn_len, output_len, chat, seed,
                                parallel=16):
    rng = random.Random(seed)
    n_words = len(sizer.corpus.words)
    # Distinct first-message offsets: two conversations must not share a prefix by chance.
    firsts = rng.sample(range(n_words), pool_size) if pool_size <= n_words else \
        [rng.randrange(n_words) for _ in range(pool_size)]
    plan = []  # (conversation, turn, target tokens, corpus offset)
    max_tokens = []
    for c in range(pool_size):
        max_tokens.append([output_len.sample(rng) for _ in range(turns)])
        for t in range(turns):
            plan.append((c, t, (input_len if t == 0 else turn_len).sample(rng),
                         firsts[c] if t == 0 else rng.randrange(n_words)))
    texts = [[None] * turns for _ in range(pool_size)]
    gate = asyncio.Semaphore(parallel)

    async def one(c, t, target, start):
        async with gate:
            # Turn 1 is a whole prompt (BOS counted); later turns are appended text.
            texts[c][t] = await sizer.make(rng, target, add_special=(t == 0), start=start)

    await asyncio.gather(*(one(*p) for p in plan))
    conversations = [Conversation(texts[c], max_tokens[c], chat) for c in range(pool_size)]
    desc = {"source": "corpus", "corpus": sizer.corpus.path, "turns": turns, "input_tokens": str(input_len),
            "turn_tokens": str(turn_len), "output_tokens": str(output_len), "pool": pool_size,
            "tokens_per_word": round(sizer.tokens_per_word, 3),
            "sized_by": "server tokenizer" if sizer.count_tokens else "estimate"}
    return Workload(conversations, desc)


def load_dataset_workload(path, *, chat, default_max_tokens, limit=None):
    """A JSONL file, one {"prompt": str, "max_tokens": int} per line (max_tokens
    optional). Each line is a one-turn session."""
    conversations = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                prompt = row["prompt"]
                n = int(row.get("max_tokens") or default_max_tokens)
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{number}: want {{\"prompt\": str, \"max_tokens\": int}}: {e}") from e
            if not isinstance(prompt, str) or not prompt or n < 1:
                raise ValueError(f"{path}:{number}: prompt must be a non-empty string, max_tokens >= 1")
            conversations.append(Conversation([prompt], [n], chat))
            if limit and len(conversations) >= limit:
                break
    if not conversations:
        raise ValueError(f"{path}: no rows")
    return Workload(conversations, {"source": "dataset", "dataset": path, "turns": 1, "pool": len(conversations)})
