"""Reference step time of this machine: one TinyViT-sized training step at batch 32, one thread.

Built from plain torch (no ftnotes import), so it measures the machine, not the project: the
unit of the notebooks' time budgets (conftest.py). Run: python tools/refstep.py
Prints milliseconds per step (median of 5 rounds of 40 steps). The same code, step for step, as
the course developers' shared/tools/refstep.py, vendored so that a fresh clone measures it.
"""
import statistics
import time

import torch
from torch import nn

torch.set_num_threads(1)
torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, d=48, h=4):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.f1, self.f2, self.h = nn.Linear(d, 2 * d), nn.Linear(2 * d, d), h

    def forward(self, x):
        B, T, D = x.shape
        y = self.n1(x)
        q, k, v = (m(y).view(B, T, self.h, D // self.h).transpose(1, 2) for m in (self.q, self.k, self.v))
        a = nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, D)
        x = x + self.o(a)
        return x + self.f2(nn.functional.gelu(self.f1(self.n2(x))))


class Net(nn.Module):
    def __init__(self, d=48):
        super().__init__()
        self.pe = nn.Conv2d(1, d, 2, stride=2)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, 17, d))
        self.blocks = nn.Sequential(*(Block(d) for _ in range(4)))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 34)

    def forward(self, x):
        p = self.pe(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(len(x), -1, -1), p], 1) + self.pos
        return self.head(self.norm(self.blocks(t)[:, 0]))


m = Net()
opt = torch.optim.AdamW(m.parameters(), 1e-3)
x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 34, (32,))


def step():
    loss = nn.functional.cross_entropy(m(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


for _ in range(10):
    step()
rounds = []
for _ in range(5):
    t = time.perf_counter()
    for _ in range(40):
        step()
    rounds.append((time.perf_counter() - t) / 40)
print(f"{1e3 * statistics.median(rounds):.2f}")
