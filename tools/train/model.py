"""TransNormerLLM in PyTorch, written from shared/model-spec.md (the engine's contract).

Parameter names match the authors' Hugging Face layout so the exported safetensors load
in our C++ engine unchanged. Three ways to compute the attention are here, and the
self-check (`python3 model.py`) asserts they agree:
  - quadratic masked form: the reference;
  - blocked (Lightning-style) form: used for training and evaluation; it takes and
    returns the fp32 state, so a long text is evaluated in segments in bounded memory;
  - recurrent form: token by token, the decode path of the engine.
"""
import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-6


@dataclass
class Config:
    vocab_size: int = 4096
    d: int = 384            # decoder_embed_dim
    layers: int = 6         # decoder_layers
    heads: int = 6          # decoder_attention_heads
    hidden: int = 384       # hidden_dim D (head dim e = D / H)
    glu: int = 896          # glu_dim G
    lrpe: list = field(default_factory=lambda: [1, 0, 0, 0, 0, 0])
    dropout: float = 0.0    # training only; not part of the exported model

    def hf_config(self):
        """config.json fields of model-spec section 2."""
        return {
            "model_type": "transnormer",
            "architectures": ["TransnormerForCausalLM"],
            "vocab_size": self.vocab_size,
            "decoder_embed_dim": self.d,
            "decoder_layers": self.layers,
            "decoder_attention_heads": self.heads,
            "hidden_dim": self.hidden,
            "glu_dim": self.glu,
            "linear_act_fun": "silu",
            "norm_type": "simplermsnorm",
            "linear_use_lrpe_list": list(self.lrpe),
            "no_scale_embedding": False,
            "bias": False,
            "tie_word_embeddings": True,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "torch_dtype": "bfloat16",
        }


def alibi_slopes(h):
    """ALiBi head slopes, the authors' rule (spec section 4), also for H not a power of 2."""
    def pow2(n):
        start = 2 ** (-8 / n)
        return [start ** (i + 1) for i in range(n)]
    if math.log2(h).is_integer():
        return pow2(h)
    p = 2 ** math.floor(math.log2(h))
    return pow2(p) + alibi_slopes(2 * p)[0::2][: h - p]


def decay_rates(cfg):
    """s[l, h] with lambda = exp(-s): fixed, not learned; the last layer decays least."""
    s = torch.tensor(alibi_slopes(cfg.heads), dtype=torch.float64)
    L = cfg.layers
    per_layer = [1 - l / (L - 1) + 1e-5 if L > 1 else 1 + 1e-5 for l in range(L)]
    return torch.stack([s * f for f in per_layer]).float()     # [L, H]


def acc_dtype(x):
    """fp32 for bf16/fp16/fp32 inputs, fp64 stays fp64 (the self-check runs in fp64)."""
    return torch.promote_types(x.dtype, torch.float32)


def srms_norm(x):
    # Parameter-free RMSNorm over the last dim, in fp32 (or wider) whatever the input dtype.
    x = x.to(acc_dtype(x))
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)


# ---------------------------------------------------------------- attention forms
# q, k: [b, h, n, ek]; v: [b, h, n, e]; s: [h] decay rate; state: [b, h, ek, e] or None.

def attn_quadratic(q, k, v, s):
    n, acc = q.shape[2], acc_dtype(q)
    t = torch.arange(n, device=q.device, dtype=acc)
    dist = t[:, None] - t[None, :]
    mask = torch.exp(-s.to(acc).view(-1, 1, 1) * dist.clamp(min=0)) * (dist >= 0)   # [h, n, n]
    return ((q @ k.transpose(-1, -2)) * mask.to(q.dtype)) @ v


def attn_recurrent(q, k, v, s, state=None):
    b, h, n, ek = q.shape
    S = torch.zeros(b, h, ek, v.shape[-1], device=q.device, dtype=q.dtype) if state is None else state
    lam = torch.exp(-s.to(acc_dtype(q))).to(q.dtype).view(1, -1, 1, 1)
    out = []
    for t in range(n):
        S = lam * S + k[:, :, t, :, None] * v[:, :, t, None, :]
        out.append((q[:, :, t, None, :] @ S).squeeze(2))
    return torch.stack(out, 2), S


def attn_blocked(q, k, v, s, state=None, block=64):
    """Lightning-style blocked attention; all blocks at once (no Python loop over blocks).
    Returns (output [b,h,n,e], outgoing state [b,h,ek,e] in fp32)."""
    b, h, n, ek = q.shape
    e, acc = v.shape[-1], acc_dtype(q)
    B = min(block, n)
    nb = -(-n // B)
    pad = nb * B - n
    if pad:  # zero q/k/v rows: they add nothing to any state and their outputs are dropped
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
    qb, kb, vb = (x.reshape(b, h, nb, B, -1) for x in (q, k, v))
    sv = s.to(acc)                                                   # [h]
    r = torch.arange(B, device=q.device, dtype=acc)
    dist = r[:, None] - r[None, :]
    # Every power of lambda is exp(-s*k) directly, never a repeated product (spec 4).
    mask = torch.exp(-sv.view(h, 1, 1) * dist.clamp(min=0)) * (dist >= 0)          # [h,B,B]
    out = ((qb @ kb.transpose(-1, -2)) * mask.view(1, h, 1, B, B).to(q.dtype)) @ vb  # intra
    # Each block's own contribution to the state at its end: sum_r lam^(B-1-r) k_r v_r^T.
    k_dec = torch.exp(-sv.view(h, 1) * (B - 1 - r)).view(1, h, 1, B, 1).to(q.dtype)
    kv = (kb * k_dec).transpose(-1, -2) @ vb                                        # [b,h,nb,ek,e]
    # Incoming state of block c: sum_{c'<c} lam^(B(c-1-c')) kv[c'] (+ lam^(Bc) state).
    c = torch.arange(nb, device=q.device, dtype=acc)
    cd = c[:, None] - 1 - c[None, :]
    W = torch.exp(-sv.view(h, 1, 1) * B * cd.clamp(min=0)) * (cd >= 0)             # [h,nb,nb]
    S_in = torch.einsum("hcd,bhdij->bhcij", W.to(kv.dtype), kv)
    if state is not None:
        S_in = S_in + torch.exp(-sv.view(h, 1) * B * c).view(1, h, nb, 1, 1) * state[:, :, None]
    # Row r of a block reads the incoming state decayed by lam^(r+1).
    q_dec = torch.exp(-sv.view(h, 1) * (r + 1)).view(1, h, 1, B, 1).to(q.dtype)
    out = out + (qb * q_dec) @ S_in.to(q.dtype)                                     # inter
    out = out.reshape(b, h, nb * B, e)[:, :, :n]
    # Outgoing state after the n real tokens, directly: lam^n S + sum_t lam^(n-1-t) k_t v_t^T.
    t = torch.arange(n, device=q.device, dtype=acc)
    kt = k[:, :, :n].to(acc) * torch.exp(-sv.view(h, 1) * (n - 1 - t)).view(1, h, n, 1)
    S_out = kt.transpose(-1, -2) @ v[:, :, :n].to(acc)
    if state is not None:
        S_out = S_out + torch.exp(-sv * n).view(1, h, 1, 1) * state.to(acc)
    return out, S_out


# ---------------------------------------------------------------- modules

class Lrpe(nn.Module):
    """theta [H,1,e], initialised and trainable as in the authors' code (nn.Parameter)."""

    def __init__(self, heads, e):
        super().__init__()
        D = heads * e
        self.theta = nn.Parameter((10000 ** (-2 / D * torch.arange(D, dtype=torch.float32))).reshape(heads, 1, e))

    def forward(self, x, offset):
        # Angles in fp32: theta * absolute position.
        acc = acc_dtype(self.theta)
        t = torch.arange(x.shape[2], device=x.device, dtype=acc) + offset
        ang = self.theta.to(acc) * t.view(1, -1, 1)                        # [h, n, e]
        return torch.cat([x * torch.cos(ang).to(x.dtype), x * torch.sin(ang).to(x.dtype)], -1)


class TokenMixer(nn.Module):
    def __init__(self, cfg, use_lrpe):
        super().__init__()
        self.h, self.e = cfg.heads, cfg.hidden // cfg.heads
        self.qkvu_proj = nn.Linear(cfg.d, 4 * cfg.hidden, bias=False)
        self.out_proj = nn.Linear(cfg.hidden, cfg.d, bias=False)
        self.lrpe = Lrpe(cfg.heads, self.e) if use_lrpe else None

    def forward(self, x, s, state, offset, mode, block):
        b, n, _ = x.shape
        q, k, v, u = self.qkvu_proj(x).chunk(4, dim=-1)
        q, k, v = (t.view(b, n, self.h, self.e).transpose(1, 2) for t in (q, k, v))
        q, k = F.silu(q), F.silu(k)
        if self.lrpe is not None:
            q, k = self.lrpe(q, offset), self.lrpe(k, offset)
        if mode == "quadratic":
            o, S = attn_quadratic(q, k, v, s), None
        elif mode == "recurrent":
            o, S = attn_recurrent(q, k, v, s, state)
        else:
            o, S = attn_blocked(q, k, v, s, state, block)
        o = o.transpose(1, 2).reshape(b, n, -1)
        o = srms_norm(o).to(u.dtype) * u          # norm over all D channels, then gate by u
        return self.out_proj(o), S


class ChannelMixer(nn.Module):
    """SGLU without activation: l3((a l1) * (a l2))."""

    def __init__(self, cfg):
        super().__init__()
        self.l1 = nn.Linear(cfg.d, cfg.glu, bias=False)
        self.l2 = nn.Linear(cfg.d, cfg.glu, bias=False)
        self.l3 = nn.Linear(cfg.glu, cfg.d, bias=False)

    def forward(self, x):
        return self.l3(self.l1(x) * self.l2(x))


class Layer(nn.Module):
    def __init__(self, cfg, use_lrpe):
        super().__init__()
        self.token_mixer = TokenMixer(cfg, use_lrpe)
        self.channel_mixer = ChannelMixer(cfg)


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d)
        self.layers = nn.ModuleList(Layer(cfg, bool(cfg.lrpe[i])) for i in range(cfg.layers))


class TransNormer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        # Decay rates are derived from the config, not stored in the checkpoint.
        self.register_buffer("decay", decay_rates(cfg), persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.reset_parameters()

    def reset_parameters(self):
        std = 0.02
        for name, p in self.named_parameters():
            if name.endswith("theta"):
                continue
            # GPT-2 style: shrink the projections that write into the residual stream
            scale = 1 / math.sqrt(2 * self.cfg.layers) if name.endswith(("out_proj.weight", "l3.weight")) else 1
            nn.init.normal_(p, std=std * scale)

    def forward(self, tokens, states=None, offset=0, mode="blocked", block=64):
        """tokens [b, n] at absolute positions offset..offset+n-1; states: per-layer fp32
        attention states from the previous segment (None = start). Returns (logits fp32, states)."""
        x = self.model.embed_tokens(tokens) * math.sqrt(self.cfg.d)
        x = self.drop(x)
        new_states = []
        for i, layer in enumerate(self.model.layers):
            a, S = layer.token_mixer(srms_norm(x).to(x.dtype), self.decay[i], None if states is None else states[i],
                                     offset, mode, block)
            x = x + self.drop(a)
            x = x + self.drop(layer.channel_mixer(srms_norm(x).to(x.dtype)))
            new_states.append(S)
        # Tied output matrix: logits = SRMSNorm(x) E^T.
        logits = srms_norm(x).to(x.dtype) @ self.model.embed_tokens.weight.t()
        return logits.to(acc_dtype(logits)), new_states


# ---------------------------------------------------------------- self-check

def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def self_check(device="cuda" if torch.cuda.is_available() else "cpu"):
    """quadratic == blocked == recurrent on random input (fp64), for the attention alone
    and for a whole random model, including segments that carry the state."""
    torch.manual_seed(0)
    dt = torch.float64
    h, e, ek = 6, 16, 32
    s = torch.tensor(alibi_slopes(h), device=device)
    worst = 0.0
    for n in (1, 5, 37, 130):
        q, k, v = (torch.randn(2, h, n, d, device=device, dtype=dt) for d in (ek, ek, e))
        ref = attn_quadratic(q, k, v, s)
        rec, S_rec = attn_recurrent(q, k, v, s)
        for B in (1, 7, 16, 64):
            blk, S_blk = attn_blocked(q, k, v, s, block=B)
            worst = max(worst, _rel(blk, ref), _rel(S_blk.to(dt), S_rec))
        worst = max(worst, _rel(rec, ref))
        # split into two pieces carrying the state: identity (b) of the spec
        if n > 1:
            m = n // 3 + 1
            o1, S1 = attn_blocked(q[:, :, :m], k[:, :, :m], v[:, :, :m], s, block=16)
            o2, S2 = attn_blocked(q[:, :, m:], k[:, :, m:], v[:, :, m:], s, S1.to(dt), block=16)
            worst = max(worst, _rel(torch.cat([o1, o2], 2), ref), _rel(S2.to(dt), S_rec))
    print(f"attention forms, max rel err (fp64): {worst:.2e}")
    assert worst < 1e-10, worst

    cfg = Config(vocab_size=300, d=48, layers=3, heads=6, hidden=48, glu=64, lrpe=[1, 0, 0])
    m = TransNormer(cfg).to(device).to(dt).eval()
    with torch.no_grad():
        for p in m.parameters():   # larger weights than the init, to make errors visible
            p.mul_(5)
        toks = torch.randint(0, cfg.vocab_size, (2, 45), device=device)
        ref, _ = m(toks, mode="quadratic")
        blk, _ = m(toks, mode="blocked", block=8)
        rec, _ = m(toks, mode="recurrent")
        # segmented prefill then token-by-token decode, carrying the state (spec (b), (c))
        seg, st = m(toks[:, :20], mode="blocked", block=16)
        outs = [seg]
        for t in range(20, 45):
            o, st = m(toks[:, t:t + 1], st, offset=t, mode="recurrent" if t % 2 else "blocked")
            outs.append(o)
        segd = torch.cat(outs, 1)
        errs = [_rel(x.double(), ref.double()) for x in (blk, rec, segd)]
    print("model logits blocked/recurrent/segmented vs quadratic (fp64): " + " ".join(f"{x:.2e}" for x in errs))
    assert max(errs) < 1e-10, errs
    print("self-check OK")


if __name__ == "__main__":
    self_check()
