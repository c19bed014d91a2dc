#!/usr/bin/env python3
"""PyTorch reference for tinyddpm: the seed notebook's DDPM on the 2-D Swiss roll.

The notebook's data, model, noise schedule, training loop and DDPM sampler, written out with the
same PyTorch operations in the same order (so float32 results match the notebook's bit for bit
where PyTorch itself is deterministic), plus deterministic DDIM (a plain-torch loop and diffusers'
DDIMScheduler). The comparison scripts in benches/ time it, and `fixtures` regenerates the
PyTorch-made files of tests/fixtures/ (see tests/fixtures/README.md).

Subcommands (each prints one JSON line on stdout; `ddpm.py SUBCOMMAND -h` for options):
  train          train a model (notebook recipe; --data: a built-in set) -> safetensors
                 state_dict + step,loss CSV; --classes conditions it on a labelled set's
                 labels (class_embed, --label-dropout, default 0.1)
  sample         DDPM (1,000 reverse steps) samples from a model -> x,y CSV; --class K
                 --guidance W: classifier-free guidance for a model trained with --classes
  bench-train    time N training steps, repeated
  bench-sample   time DDPM sampling of n points, repeated
  bench-forward  time one batch-1 forward pass (no_grad and with autograd)
  ddim           time DDIM sampling, plain torch and diffusers; optional x,y CSV
  gpu-bench      the seed jobs on CUDA: 10,000 training steps, 10,000 x 1,000 DDPM samples
  fixtures       regenerate the PyTorch fixtures into a folder
  class-fixtures regenerate the class-conditioning fixtures into a folder

Everything except gpu-bench runs on the CPU. Needs torch, numpy and safetensors; ddim and
fixtures also need diffusers (scripts/install-torch.sh installs all four).
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn

T = 1000  # diffusion steps; the model sees time as t / T
HIDDEN = 128
BLOCKS = 3
BETA_START, BETA_END = 1e-4, 0.02
BATCH = 128
LR = 1e-3
MAX_POINTS = 1_000_000  # bounds memory: activations are points x HIDDEN float32 per layer

# diffusers' DDIMScheduler as the seed repository compares against: the notebook's betas, no
# clipping, and "trailing" spacing with the final step to alpha-bar = 1, so 50 steps visit
# 999, 979, ..., 19 and end on a clean sample.
DDIM_CONFIG = dict(
    num_train_timesteps=T,
    beta_start=BETA_START,
    beta_end=BETA_END,
    beta_schedule="linear",
    clip_sample=False,
    prediction_type="epsilon",
    set_alpha_to_one=True,
    steps_offset=0,
    timestep_spacing="trailing",
)

# Settings shared by the few-step multistep schedulers of the fixtures; everything not named
# here (or per file below) stays at diffusers' default.
FEW_STEP_BASE = dict(
    num_train_timesteps=T,
    beta_start=BETA_START,
    beta_end=BETA_END,
    beta_schedule="linear",
    prediction_type="epsilon",
)

# (file, diffusers scheduler class, its extra arguments, number of steps)
SCHEDULER_FIXTURES = [
    ("ddim_ref.csv", "DDIMScheduler", DDIM_CONFIG, 50),
    ("ddim_ref_leading.csv", "DDIMScheduler", dict(DDIM_CONFIG, timestep_spacing="leading"), 50),
    (
        "dpm_ref_2m_linspace_20.csv",
        "DPMSolverMultistepScheduler",
        dict(FEW_STEP_BASE, solver_order=2),
        20,
    ),
    (
        "dpm_ref_3m_linspace_20.csv",
        "DPMSolverMultistepScheduler",
        dict(FEW_STEP_BASE, solver_order=3),
        20,
    ),
    (
        "dpm_ref_2m_lu_20.csv",
        "DPMSolverMultistepScheduler",
        dict(FEW_STEP_BASE, solver_order=2, use_lu_lambdas=True),
        20,
    ),
    (
        "dpm_ref_2m_karras_20.csv",
        "DPMSolverMultistepScheduler",
        dict(FEW_STEP_BASE, solver_order=2, use_karras_sigmas=True),
        20,
    ),
    (
        "dpm_ref_3m_karras_15.csv",
        "DPMSolverMultistepScheduler",
        dict(FEW_STEP_BASE, solver_order=3, use_karras_sigmas=True),
        15,
    ),
    (
        "unipc_ref_karras_20.csv",
        "UniPCMultistepScheduler",
        dict(FEW_STEP_BASE, use_karras_sigmas=True),
        20,
    ),
]
FIXTURE_MODEL = "torch_model_3k.safetensors"
FIXTURE_TRAIN_STEPS = 3000
FIXTURE_SEED = 42
CLASS_FIXTURE_MODEL = "torch_class_model.safetensors"
CLASS_FIXTURE_STEPS = 1000


# ------------------------------------------------------------------------------------------
# Data, model, schedule
# ------------------------------------------------------------------------------------------
def swiss_roll(n):
    """n points of the Swiss roll: t ~ U(1.5 pi, 4.5 pi), (t cos t, t sin t) / 15, float32.

    Drawn as 1.5 pi (1 + 2 U(0, 1)) so that it takes the same torch.rand stream as the notebook.
    """
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n))
    return torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / 15.0


def _uniform(n):
    return torch.rand(n)


def _circle(n, radius):
    """n points at uniform angles on a circle of `radius` (sklearn spaces them evenly; drawn
    here, as tinyddpm draws each example on its own)."""
    a = 2 * math.pi * _uniform(n)
    return torch.stack([torch.cos(a), torch.sin(a)], dim=1) * radius


def _pick(n, k):
    """n labels uniform in 0..k-1."""
    return torch.randint(0, k, (n,))


# The labelled sets below draw (points, labels): the label is the component a point is drawn
# from, with the meaning tinyddpm's DataSet::classes gives it (host/src/data/sets.rs). The
# unlabelled name of each (circles, ...) takes the same draws and drops the labels.
def labelled_circles(n):
    """FFJORD: sklearn make_circles(factor=0.5, noise=0.08) * 3 (half the points on each).
    Label: the circle, 0 the outer (radius 3), 1 the inner."""
    k = _pick(n, 2)
    r = torch.where(k == 0, 1.0, 0.5)[:, None]
    return (_circle(n, 1.0) * r + torch.randn(n, 2) * 0.08) * 3, k


def labelled_rings(n):
    """FFJORD: four circles of radii 1, 0.75, 0.5, 0.25, * 3, noise N(0, 0.08^2).
    Label: the ring, 0 the outermost (radius 3) to 3 the innermost (0.75)."""
    k = _pick(n, 4)
    r = (4 - k).float()[:, None] / 4
    return _circle(n, 1.0) * r * 3 + torch.randn(n, 2) * 0.08, k


def labelled_moons(n):
    """FFJORD: sklearn make_moons(noise=0.1) * 2 + (-1, -0.2).
    Label: the moon, 0 the upper (cos, sin), 1 the lower (1 - cos, 0.5 - sin)."""
    k = _pick(n, 2)
    upper = (k == 0)[:, None]
    a = math.pi * _uniform(n)
    top = torch.stack([torch.cos(a), torch.sin(a)], dim=1)
    bottom = torch.stack([1 - torch.cos(a), 0.5 - torch.sin(a)], dim=1)
    x = torch.where(upper, top, bottom) + torch.randn(n, 2) * 0.1
    return x * 2 + torch.tensor([-1.0, -0.2]), k


# FFJORD's index of the centre at angle j * 45 degrees, j = 0..7: its list is (1, 0), (-1, 0),
# (0, 1), (0, -1), then the diagonals (+,+), (+,-), (-,+), (-,-).
EIGHT_FFJORD_INDEX = torch.tensor([0, 4, 2, 6, 1, 7, 3, 5])


def labelled_eight_gaussians(n):
    """FFJORD: N(c, 0.5^2) around 8 centres at radius 4 (every 45 degrees), / 1.414.
    Label: the centre's index in FFJORD's list (EIGHT_FFJORD_INDEX), as tinyddpm numbers it."""
    j = _pick(n, 8)
    # The centres are drawn in angle order (the order does not change the distribution); the
    # label maps the angle index to FFJORD's.
    a = j.float() * (math.pi / 4)
    centre = torch.stack([torch.cos(a), torch.sin(a)], dim=1) * 4
    return (torch.randn(n, 2) * 0.5 + centre) / 1.414, EIGHT_FFJORD_INDEX[j]


def labelled_pinwheel(n):
    """FFJORD: 5 arms, radial std 0.3, tangential std 0.1, rate 0.25, * 2.
    Label: the arm k, whose angle starts at 2 pi k / 5."""
    k = _pick(n, 5)
    label = k.float()
    f = torch.randn(n, 2) * torch.tensor([0.3, 0.1])
    f[:, 0] += 1
    a = label * (2 * math.pi / 5) + 0.25 * torch.exp(f[:, 0])
    c, s = torch.cos(a), torch.sin(a)
    # FFJORD's einsum("ti,tij->tj", f, [[c, -s], [s, c]]): a rotation by -a.
    return 2 * torch.stack([f[:, 0] * c + f[:, 1] * s, f[:, 1] * c - f[:, 0] * s], dim=1), k


def labelled_two_spirals(n):
    """FFJORD: sqrt(U) * 540 degrees along two mirrored spirals, / 3, noise N(0, 0.1^2).
    Label: the spiral, 0 the unflipped one, 1 its negative."""
    t = torch.sqrt(_uniform(n)) * 540 * (2 * math.pi) / 360
    x = torch.stack([-torch.cos(t) * t + _uniform(n) * 0.5, torch.sin(t) * t + _uniform(n) * 0.5], 1)
    k = _pick(n, 2)
    sign = torch.where(k == 0, 1.0, -1.0)[:, None]
    return x * sign / 3 + torch.randn(n, 2) * 0.1, k


def _points(labelled):
    return lambda n: labelled(n)[0]


circles = _points(labelled_circles)
rings = _points(labelled_rings)
moons = _points(labelled_moons)
eight_gaussians = _points(labelled_eight_gaussians)
pinwheel = _points(labelled_pinwheel)
two_spirals = _points(labelled_two_spirals)


def checkerboard(n):
    """FFJORD: x1 ~ U(-2, 2), x2 = U(0, 1) - 2 B + (floor(x1) mod 2), B ~ {0, 1}; * 2."""
    x1 = _uniform(n) * 4 - 2
    x2 = _uniform(n) - _pick(n, 2).float() * 2 + torch.remainder(torch.floor(x1), 2)
    return torch.stack([x1, x2], dim=1) * 2


def line(n):
    """FFJORD: x ~ U(-2.5, 2.5), y = x."""
    x = _uniform(n) * 5 - 2.5
    return torch.stack([x, x], dim=1)


def cosine(n):
    """FFJORD's "cos": x ~ U(-2.5, 2.5), y = 2.5 sin(x)."""
    x = _uniform(n) * 5 - 2.5
    return torch.stack([x, torch.sin(x) * 2.5], dim=1)


# The built-in data sets, by tinyddpm's names: the notebook's Swiss roll and the FFJORD toy
# list (rtqichen/ffjord, lib/toy_data.py), each drawn from torch's generator.
DATA_SETS = {
    "swissroll": lambda n: swiss_roll(n),
    "circles": circles,
    "rings": rings,
    "moons": moons,
    "8gaussians": eight_gaussians,
    "pinwheel": pinwheel,
    "2spirals": two_spirals,
    "checkerboard": checkerboard,
    "line": line,
    "cos": cosine,
}

# The sets with labels, for `train --classes`: name -> (draw (points, labels), C). The same
# list and C as tinyddpm's DataSet::classes.
LABELLED_SETS = {
    "circles": (labelled_circles, 2),
    "rings": (labelled_rings, 4),
    "moons": (labelled_moons, 2),
    "8gaussians": (labelled_eight_gaussians, 8),
    "pinwheel": (labelled_pinwheel, 5),
    "2spirals": (labelled_two_spirals, 2),
}


class TimeEmbedding(nn.Module):
    """Maps the input time t / T to a HIDDEN-wide vector: Linear(1, H), GELU, Linear(H, H)."""

    def __init__(self, dim):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(1, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, t):
        return self.embed(t.unsqueeze(-1).float())


class DiffusionModel(nn.Module):
    """The notebook's noise predictor eps(x, t / T), optionally conditioned on a class c.

    h = GELU(input(x)) + temb; each block: h = (block(h) + h + temb) / sqrt(2); out = output(h).
    Submodules are created in this order because the order fixes which torch.rand draws
    initialise which weights, and the attribute names are the state_dict keys the Rust importer
    reads.

    With `classes` = C > 0 (`train --classes`), a class embedding of C + 1 rows, zeros at
    first, row C the "no class" of classifier-free guidance: temb = time_embed(t) +
    class_embed(c), that sum first, then used wherever temb is. It is created last, so the
    other weights start as an unconditional model's of the same seed. With C = 0 the model
    and its operations are the unconditional notebook's.
    """

    def __init__(self, hidden=HIDDEN, blocks=BLOCKS, dim=2, classes=0):
        super().__init__()
        self.classes = classes
        self.time_embed = TimeEmbedding(hidden)
        self.input_layer = nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
        self.hidden_layers = nn.ModuleList(
            nn.Sequential(
                nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU()
            )
            for _ in range(blocks)
        )
        self.output_layer = nn.Linear(hidden, dim)
        if classes > 0:
            self.class_embed = nn.Embedding(classes + 1, hidden)
            nn.init.zeros_(self.class_embed.weight)

    def forward(self, x, t, c=None):
        """eps for rows x at model times t; c: each row's class (long, 0..C, C = no class;
        None: no class), only for a model with classes."""
        temb = self.time_embed(t)
        if self.classes > 0:
            if c is None:
                c = torch.full((x.shape[0],), self.classes, dtype=torch.long, device=x.device)
            temb = temb + self.class_embed(c)
        elif c is not None:
            raise ValueError("the model is not conditioned on classes")
        h = self.input_layer(x) + temb
        for block in self.hidden_layers:
            # Same additions in the same order, then a division (not a multiplication by
            # 1/sqrt 2), so the float32 rounding is the notebook's.
            h = (block(h) + h + temb) / math.sqrt(2)
        return self.output_layer(h)


class Schedule:
    """Linear betas BETA_START..BETA_END over T steps, in float32 as torch computes them."""

    def __init__(self, device="cpu"):
        self.betas = torch.linspace(BETA_START, BETA_END, T).to(device)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.sqrt_alphas_cumprod = torch.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = torch.sqrt(1.0 - self.alphas_cumprod)

    def diffuse(self, x0, t, noise):
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, per row t."""
        return (
            self.sqrt_alphas_cumprod[t].view(-1, 1) * x0
            + self.sqrt_one_minus_alphas_cumprod[t].view(-1, 1) * noise
        )

    def reverse_step(self, x, t, eps, z):
        """One DDPM step from time t (an int):
        x_{t-1} = (x_t - (1 - a_t) / sqrt(1 - abar_t) eps) / sqrt(a_t) + sqrt(1 - a_t) z,
        with no noise term at t = 0 (z is then ignored). Written as the notebook writes it
        (1/sqrt(a) times, sqrt(1 - a) for sqrt(beta)) for the same float32 rounding.
        """
        a = self.alphas[t]
        coeff = (1 - a) / torch.sqrt(1 - self.alphas_cumprod[t])
        x = (1 / torch.sqrt(a)) * (x - coeff * eps)
        if t > 0:
            x = x + torch.sqrt(1 - a) * z
        return x


def model_time(t, n, device="cpu"):
    """The model's time input for integer step t, n rows: float32 t / T."""
    return torch.full((n,), int(t), dtype=torch.long, device=device).float() / T


# ------------------------------------------------------------------------------------------
# Training and sampling
# ------------------------------------------------------------------------------------------
def train(
    steps,
    seed,
    device="cpu",
    data="swissroll",
    shape=(HIDDEN, BLOCKS, 2),
    ema=None,
    classes=False,
    label_dropout=0.1,
):
    """The notebook's training run: Adam(lr 1e-3), batch 128, fresh batch of `data` per step,
    t uniform in 0..T-1, MSE between predicted and true noise. Seeding right before the model
    is built makes the initial weights and every batch a function of the seed. `shape` is
    (H, B, D); points of D != 2 are standard normal (for timing other shapes only). With
    `ema` (a decay such as 0.999), an exponential moving average of the weights is kept after
    every update, `e.lerp_(p, 1 - ema)` as tinyddpm's `train --ema` keeps it, and returned in
    place of the last weights. With `classes` (a labelled set, LABELLED_SETS), the model is
    conditioned on the set's C labels: each example's label is replaced by C ("no class")
    with probability `label_dropout`, independently (one torch.rand per example, drawn after
    the noise). Returns (model, per-step losses)."""
    c = 0
    if classes:
        if shape[2] != 2 or data not in LABELLED_SETS:
            raise ValueError(
                f"--classes: {data} has no labels to condition on (sets with labels: "
                + ", ".join(LABELLED_SETS)
                + ")"
            )
        if not 0.0 <= label_dropout <= 1.0:
            raise ValueError(
                f"label dropout must be a probability in [0, 1], not {label_dropout}"
            )
        draw_labelled, c = LABELLED_SETS[data]
    torch.manual_seed(seed)
    hidden, blocks, dim = shape
    model = DiffusionModel(hidden, blocks, dim, classes=c).to(device)
    averaged = [p.detach().clone() for p in model.parameters()] if ema is not None else None
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sch = Schedule(device)
    losses = []
    draw = DATA_SETS[data] if dim == 2 else (lambda n: torch.randn(n, dim))
    for _ in range(steps):
        # Data and t are drawn on the CPU generator and moved, as the notebook does.
        if c > 0:
            x0, label = draw_labelled(BATCH)
            x0 = x0.to(device)
        else:
            x0 = draw(BATCH).to(device)
        t = torch.randint(0, T, (BATCH,)).to(device)
        noise = torch.randn_like(x0)
        if c > 0:
            dropped = torch.rand(BATCH) < label_dropout
            label = torch.where(dropped, c, label).to(device)
            pred = model(sch.diffuse(x0, t, noise), t.float() / T, label)
        else:
            pred = model(sch.diffuse(x0, t, noise), t.float() / T)
        loss = torch.mean((pred - noise) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if averaged is not None:
            with torch.no_grad():
                for e, p in zip(averaged, model.parameters()):
                    e.lerp_(p, 1 - ema)
        losses.append(loss.item())
    if averaged is not None:
        with torch.no_grad():
            for e, p in zip(averaged, model.parameters()):
                p.copy_(e)
    return model, losses


def guided_eps(model, x, t, cls, w):
    """Classifier-free guidance at integer step t for class `cls` with weight w (a float32
    tensor): eps_u + w * (eps_c - eps_u), eps_c = eps(x, t, cls), eps_u = eps(x, t, no class),
    in float32, the two as one forward pass of 2n rows (conditional rows first). w = 1 is
    eps_c alone and w = 0 eps_u alone, one evaluation each (tinyddpm's definition)."""
    n, dev, c = x.shape[0], x.device, model.classes
    if w == 1:
        return model(x, model_time(t, n, dev), torch.full((n,), cls, dtype=torch.long, device=dev))
    if w == 0:
        return model(x, model_time(t, n, dev), torch.full((n,), c, dtype=torch.long, device=dev))
    labels = torch.cat(
        [
            torch.full((n,), cls, dtype=torch.long, device=dev),
            torch.full((n,), c, dtype=torch.long, device=dev),
        ]
    )
    eps = model(torch.cat([x, x]), model_time(t, 2 * n, dev), labels)
    eps_c, eps_u = eps[:n], eps[n:]
    return eps_u + w * (eps_c - eps_u)


def guidance_weight(model, cls, w):
    """Checks `sample --class cls --guidance w` against the model; w as a float32 tensor."""
    if model.classes == 0:
        raise ValueError(
            f"--class {cls}: the model is not conditioned on classes (train it with --classes)"
        )
    if not 0 <= cls < model.classes:
        raise ValueError(
            f"--class {cls}: the model has {model.classes} classes, 0 to {model.classes - 1}"
        )
    with np.errstate(over="ignore"):
        w32 = np.float32(w)
    if not (np.isfinite(w32) and w32 >= 0):
        raise ValueError(f"--guidance {w} must be a finite weight of at least 0")
    return torch.tensor(w32, dtype=torch.float32)


@torch.no_grad()
def sample_ddpm(model, n, seed, device="cpu", cls=None, guidance=1.0):
    """n DDPM samples: x_T ~ N(0, I) then T reverse steps, seeded as the notebook's sampler.
    With `cls` (a model with classes), each step's eps is guided_eps(cls, guidance); without,
    the model's eps (a model with classes: its "no class" eps). Guidance draws no noise: the
    samples take the unconditional sampler's noise."""
    w = None if cls is None else guidance_weight(model, cls, guidance)
    model.eval()
    sch = Schedule(device)
    torch.manual_seed(seed)
    x = torch.randn(n, 2).to(device)
    for t in range(T - 1, -1, -1):
        if w is None:
            eps = model(x, model_time(t, n, device))
        else:
            eps = guided_eps(model, x, t, cls, w.to(device))
        x = sch.reverse_step(x, t, eps, torch.randn_like(x) if t > 0 else None)
    return x.cpu()


def ddim_timesteps(steps, spacing):
    """The visited timesteps of K-step DDIM as diffusers spaces them."""
    if spacing == "trailing":
        return [round(T - i * T / steps) - 1 for i in range(steps)]
    return [i * (T // steps) for i in range(steps)][::-1]  # "leading"


@torch.no_grad()
def ddim_plain(model, x_T, steps, spacing="trailing"):
    """Deterministic DDIM (eta = 0) in plain torch, float32, the notebook's alpha-bar:
    x0_hat = (x - sqrt(1 - ab_t) eps) / sqrt(ab_t); x_prev = sqrt(ab_p) x0_hat + sqrt(1 - ab_p) eps,
    p = t - T // steps, and ab_p = 1 past the start (diffusers' set_alpha_to_one)."""
    ab = Schedule().alphas_cumprod
    x = x_T.clone()
    for t in ddim_timesteps(steps, spacing):
        eps = model(x, model_time(t, x.shape[0]))
        a_t = ab[t]
        prev = t - T // steps
        a_p = ab[prev] if prev >= 0 else torch.tensor(1.0)
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        x = a_p**0.5 * x0 + (1 - a_p) ** 0.5 * eps
    return x


def make_scheduler(name, config):
    import diffusers

    return getattr(diffusers, name)(**config)


@torch.no_grad()
def run_scheduler(model, scheduler, steps, x_T):
    """A diffusers scheduler's own loop: set_timesteps(steps), then for each t,
    x = step(eps(x, int(t) / T), t, x).prev_sample. Returns (x_0, visited timesteps)."""
    scheduler.set_timesteps(steps)
    x = x_T.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, model_time(t, x.shape[0])), t, x).prev_sample
    return x, [int(t) for t in scheduler.timesteps]


# ------------------------------------------------------------------------------------------
# Files and output
# ------------------------------------------------------------------------------------------
def replace_atomically(path, write):
    """Writes through a temporary file beside `path`, so a failed run leaves no half file."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_model(model, path):
    """The state_dict as float32 safetensors (the PyTorch keys; Linear weights [out, in])."""
    from safetensors.torch import save_file

    state = {
        k: v.detach().to(torch.float32).cpu().contiguous() for k, v in model.state_dict().items()
    }
    replace_atomically(path, lambda p: save_file(state, p))


def load_model(path):
    """A DiffusionModel from a safetensors state_dict; every key must be present and used. A
    `class_embed.weight` of [C + 1, H] makes it a model of C classes."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(path)
    except SafetensorError as e:
        raise ValueError(f"{path}: not a safetensors file ({e})") from e
    embed = state.get("class_embed.weight")
    classes = 0
    if embed is not None:
        if embed.dim() != 2 or embed.shape[0] < 2:
            raise ValueError(
                f"{path}: class_embed.weight has shape {list(embed.shape)}, expected [C + 1, H]"
            )
        classes = embed.shape[0] - 1  # row C is "no class"
    model = DiffusionModel(classes=classes)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: not this model's state_dict ({e})") from e
    return model.eval()


def write_csv(path, header, columns):
    """Columns of ints (written as %d) or floats (float32 values written as %.9g, which parses
    back to the same float32)."""

    def fmt(v):
        return "%d" % v if isinstance(v, (int, np.integer)) else "%.9g" % v

    def write(p):
        with open(p, "w") as f:
            f.write(",".join(header) + "\n")
            for row in zip(*columns, strict=True):
                f.write(",".join(fmt(v) for v in row) + "\n")

    replace_atomically(path, write)


def write_points(path, x):
    x = x.numpy()
    write_csv(path, ["x", "y"], [x[:, 0], x[:, 1]])


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(v) for v in f.read().split()[:3]]
    except OSError:
        return None


def emit(what, **fields):
    """One JSON line; timings carry the load average and thread count because the machines
    these run on are shared and timings depend on contention."""
    record = dict(what=what, **fields, torch_threads=torch.get_num_threads(), loadavg=loadavg())
    print(json.dumps(record), flush=True)


def timed(fn, repeats):
    """Wall-clock seconds of each of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def timing_fields(prefix, times):
    return {
        f"{prefix}wall_s_each": times,
        f"{prefix}wall_s_median": statistics.median(times),
        f"{prefix}wall_s_min": min(times),
    }


# ------------------------------------------------------------------------------------------
# Subcommands
# ------------------------------------------------------------------------------------------
def cmd_train(a):
    t0 = time.perf_counter()
    if a.label_dropout is not None and not a.classes:
        raise ValueError("--label-dropout needs --classes")
    dropout = 0.1 if a.label_dropout is None else a.label_dropout
    model, losses = train(
        a.steps, a.seed, data=a.data, ema=a.ema, classes=a.classes, label_dropout=dropout
    )
    wall = time.perf_counter() - t0
    save_model(model, a.out)
    write_csv(a.losses, ["step", "loss"], [list(range(len(losses))), losses])
    emit(
        "train",
        steps=a.steps,
        seed=a.seed,
        data=a.data,
        wall_s=wall,
        ms_per_step=1000 * wall / a.steps,
        loss_first=losses[0],
        loss_last=losses[-1],
        loss_mean_last200=statistics.fmean(losses[-200:]),
        out=a.out,
        losses=a.losses,
        **(dict(classes=model.classes) if a.classes else {}),
    )


def cmd_sample(a):
    if a.guidance is not None and a.cls is None:
        raise ValueError("--guidance needs --class")
    w = 1.0 if a.guidance is None else a.guidance
    model = load_model(a.model)
    if a.cls is not None:
        guidance_weight(model, a.cls, w)  # bad input fails before the sampling
    t0 = time.perf_counter()
    x = sample_ddpm(model, a.n, a.seed, cls=a.cls, guidance=w)
    wall = time.perf_counter() - t0
    write_points(a.out, x)
    guided = dict(cls=a.cls, guidance=w) if a.cls is not None else {}
    emit("sample-ddpm", n=a.n, seed=a.seed, wall_s=wall, out=a.out, **guided)


def cmd_bench_train(a):
    shape = (a.hidden, a.blocks, a.dim)
    # warm-up: one-time dispatch and allocator costs are not per-step costs
    train(20, a.seed, shape=shape)
    times = timed(lambda: train(a.steps, a.seed, shape=shape), a.repeats)
    med = statistics.median(times)
    emit(
        "bench-train",
        hidden=a.hidden,
        blocks=a.blocks,
        dim=a.dim,
        steps=a.steps,
        batch=BATCH,
        repeats=a.repeats,
        **timing_fields("", times),
        ms_per_step=1000 * med / a.steps,
        ms_per_step_best=1000 * min(times) / a.steps,
    )


def cmd_bench_sample(a):
    model = load_model(a.model)
    times = timed(lambda: sample_ddpm(model, a.n, a.seed), a.repeats)
    emit(
        "bench-sample-ddpm",
        n=a.n,
        reverse_steps=T,
        repeats=a.repeats,
        **timing_fields("", times),
        samples_per_s=a.n / statistics.median(times),
    )


def cmd_bench_forward(a):
    model = load_model(a.model)
    torch.manual_seed(a.seed)
    x = torch.randn(1, 2)
    t = model_time(T // 2, 1)
    result = {}
    for mode, grad in (("no_grad", False), ("grad_enabled", True)):
        per_call = []
        with torch.set_grad_enabled(grad):
            for _ in range(200):  # warm-up: allocator and kernel selection
                model(x, t)
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                for _ in range(a.calls):
                    model(x, t)
                per_call.append(1e6 * (time.perf_counter() - t0) / a.calls)
        result[mode] = dict(
            us_per_call_each=per_call, us_per_call_median=statistics.median(per_call)
        )
    emit("bench-forward-batch1", calls=a.calls, repeats=a.repeats, **result)


def cmd_ddim(a):
    model = load_model(a.model)
    torch.manual_seed(a.seed)
    x_T = torch.randn(a.n, 2)
    config = dict(DDIM_CONFIG, timestep_spacing=a.spacing)
    out = {}

    def with_diffusers():
        out["diffusers"], out["timesteps"] = run_scheduler(
            model, make_scheduler("DDIMScheduler", config), a.steps, x_T
        )

    def plain():
        out["plain"] = ddim_plain(model, x_T, a.steps, a.spacing)

    diffusers_times = timed(with_diffusers, a.repeats)
    plain_times = timed(plain, a.repeats)
    if a.out:
        write_points(a.out, out["diffusers"])
    emit(
        "ddim",
        n=a.n,
        steps=a.steps,
        seed=a.seed,
        config=config,
        timesteps=out["timesteps"],
        repeats=a.repeats,
        **timing_fields("diffusers_", diffusers_times),
        **timing_fields("plain_torch_", plain_times),
        max_abs_diff_diffusers_vs_plain=float((out["diffusers"] - out["plain"]).abs().max()),
        out=a.out or None,
    )


def cmd_gpu_bench(a):
    if not torch.cuda.is_available():
        raise RuntimeError("gpu-bench needs a CUDA device and a CUDA build of torch")
    dev = torch.device("cuda")
    sync = torch.cuda.synchronize
    # Warm-ups so CUDA initialisation and kernel loading are not timed.
    train(50, a.seed, dev)
    sync()
    t0 = time.perf_counter()
    model, _ = train(10_000, a.seed, dev)
    sync()
    train_s = time.perf_counter() - t0
    sample_ddpm(model, 256, a.seed, dev)
    sync()
    t0 = time.perf_counter()
    sample_ddpm(model, 10_000, a.seed, dev)
    sync()
    sample_s = time.perf_counter() - t0
    emit(
        "torch-gpu",
        device=torch.cuda.get_device_name(0),
        train_10000_steps_s=train_s,
        ms_per_step=train_s / 10,
        sample_ddpm_10000x1000_s=sample_s,
    )


def cmd_fixtures(a):
    out = a.out_dir
    os.makedirs(out, exist_ok=True)
    info = {}
    if a.model:
        model = load_model(a.model)
        info["model"] = a.model
    else:
        model, losses = train(FIXTURE_TRAIN_STEPS, FIXTURE_SEED)
        model.eval()
        path = os.path.join(out, FIXTURE_MODEL)
        save_model(model, path)
        info["model"] = path
        info["train_loss_last"] = losses[-1]
    sch = Schedule()

    write_csv(
        os.path.join(out, "schedule_ref.csv"),
        [
            "t",
            "beta",
            "alpha",
            "alphas_cumprod",
            "sqrt_alphas_cumprod",
            "sqrt_one_minus_alphas_cumprod",
        ],
        [list(range(T))]
        + [
            v.numpy()
            for v in (
                sch.betas,
                sch.alphas,
                sch.alphas_cumprod,
                sch.sqrt_alphas_cumprod,
                sch.sqrt_one_minus_alphas_cumprod,
            )
        ],
    )

    # eps_ref: 512 standard-normal inputs, times spread evenly over 0..T-1, one batch.
    x = np.random.RandomState(123).standard_normal((512, 2)).astype(np.float32)
    t = np.round(np.arange(512) * (T - 1) / 511).astype(np.int64)
    with torch.no_grad():
        eps = model(torch.from_numpy(x), torch.from_numpy(t).float() / T).numpy()
    write_csv(
        os.path.join(out, "eps_ref.csv"),
        ["x0", "x1", "t", "eps0", "eps1"],
        [x[:, 0], x[:, 1], t.tolist(), eps[:, 0], eps[:, 1]],
    )

    # ddpm_step_ref: one reverse step per row, run one row at a time; rows 0..3 are forced to
    # t = 0, 1, 500, 999 so the noiseless last step and both ends are covered.
    rs = np.random.RandomState(999)
    xt = rs.standard_normal((256, 2)).astype(np.float32)
    ts = rs.randint(0, T, size=256).astype(np.int64)
    z = rs.standard_normal((256, 2)).astype(np.float32)
    ts[:4] = [0, 1, 500, T - 1]
    eps_rows, out_rows = [], []
    with torch.no_grad():
        for i in range(256):
            xi, ti = torch.from_numpy(xt[i : i + 1]), int(ts[i])
            e = model(xi, model_time(ti, 1))
            eps_rows.append(e.numpy()[0])
            out_rows.append(sch.reverse_step(xi, ti, e, torch.from_numpy(z[i : i + 1])).numpy()[0])
    e, o = np.stack(eps_rows), np.stack(out_rows)
    write_csv(
        os.path.join(out, "ddpm_step_ref.csv"),
        ["xt0", "xt1", "t", "z0", "z1", "eps0", "eps1", "out0", "out1"],
        [xt[:, 0], xt[:, 1], ts.tolist(), z[:, 0], z[:, 1], e[:, 0], e[:, 1], o[:, 0], o[:, 1]],
    )

    # The diffusers samplers, all from the same 256 starting points.
    x_T = np.random.RandomState(321).standard_normal((256, 2)).astype(np.float32)
    visited = {}
    for name, cls, config, steps in SCHEDULER_FIXTURES:
        x0, visited[name] = run_scheduler(
            model, make_scheduler(cls, config), steps, torch.from_numpy(x_T)
        )
        x0 = x0.numpy()
        write_csv(
            os.path.join(out, name),
            ["xT0", "xT1", "x00", "x01"],
            [x_T[:, 0], x_T[:, 1], x0[:, 0], x0[:, 1]],
        )
    emit("fixtures", out_dir=out, **info, timesteps=visited)


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------
def bounded_int(lo, hi):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is outside {lo}..{hi}")
        return v

    return parse


def parser():
    here = os.path.dirname(os.path.abspath(__file__))
    fixture_model = os.path.normpath(
        os.path.join(here, "..", "..", "tests", "fixtures", FIXTURE_MODEL)
    )
    steps = bounded_int(1, 10_000_000)
    points = bounded_int(1, MAX_POINTS)
    repeats = bounded_int(1, 1000)

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--threads",
        type=bounded_int(1, 1024),
        default=2,
        help="torch.set_num_threads (default 2, what the comparisons and fixtures use)",
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="SUBCOMMAND")

    def add(name, fn, help, model=False, seed=42):
        s = sub.add_parser(name, help=help, description=help)
        if model:
            s.add_argument(
                "--model",
                default=fixture_model,
                help="safetensors state_dict (default: tests/fixtures/" + FIXTURE_MODEL + ")",
            )
        if seed is not None:
            s.add_argument("--seed", type=int, default=seed, help=f"torch seed (default {seed})")
        s.set_defaults(fn=fn)
        return s

    s = add("train", cmd_train, "train a model with the notebook's recipe")
    s.add_argument("--steps", type=steps, default=10_000)
    s.add_argument("--data", choices=list(DATA_SETS), default="swissroll", help="data set")
    s.add_argument("--out", required=True, help="model file to write (safetensors)")
    s.add_argument("--losses", required=True, help="CSV of step,loss to write")
    s.add_argument(
        "--ema",
        type=float,
        default=None,
        help="keep an exponential moving average of the weights with this decay (e.g. 0.999) "
        "and save it (tinyddpm train --ema)",
    )
    s.add_argument(
        "--classes",
        action="store_true",
        help="condition the model on the data's labels (sets with labels: "
        + ", ".join(LABELLED_SETS)
        + "), for sample --class K --guidance W: class_embed.weight [C + 1, H], row C "
        "'no class' (tinyddpm train --classes)",
    )
    s.add_argument(
        "--label-dropout",
        type=float,
        default=None,
        help="with --classes: the probability of dropping an example's label to 'no class' "
        "(default 0.1)",
    )

    s = add("sample", cmd_sample, "DDPM samples (1,000 reverse steps) to an x,y CSV", model=True)
    s.add_argument("--n", type=points, default=10_000)
    s.add_argument("--out", required=True, help="CSV to write")
    s.add_argument(
        "--class",
        dest="cls",
        type=int,
        default=None,
        metavar="K",
        help="draw every sample of class K (0 to C - 1) of a model trained with --classes "
        "(default: none, the model's unconditional eps)",
    )
    s.add_argument(
        "--guidance",
        type=float,
        default=None,
        metavar="W",
        help="with --class: classifier-free guidance eps_u + W (eps_c - eps_u), W finite and "
        ">= 0 (default 1: the conditional model alone; 0: the unconditional one)",
    )

    s = add("bench-train", cmd_bench_train, "time training steps (each run from a fresh model)")
    s.add_argument("--steps", type=steps, default=2000)
    s.add_argument("--repeats", type=repeats, default=3)
    s.add_argument("--hidden", type=bounded_int(1, 4096), default=HIDDEN)
    s.add_argument("--blocks", type=bounded_int(1, 64), default=BLOCKS)
    s.add_argument("--dim", type=bounded_int(1, 16), default=2, help="D (not 2: normal points)")

    s = add("bench-sample", cmd_bench_sample, "time DDPM sampling", model=True)
    s.add_argument("--n", type=points, default=10_000)
    s.add_argument("--repeats", type=repeats, default=3)

    s = add("bench-forward", cmd_bench_forward, "time a batch-1 forward pass", model=True)
    s.add_argument("--calls", type=steps, default=10_000)
    s.add_argument("--repeats", type=repeats, default=3)

    s = add("ddim", cmd_ddim, "time deterministic DDIM, plain torch and diffusers", model=True)
    s.add_argument("--n", type=points, default=10_000)
    s.add_argument("--steps", type=bounded_int(1, T), default=50)
    s.add_argument("--spacing", choices=["trailing", "leading"], default="trailing")
    s.add_argument("--repeats", type=repeats, default=3)
    s.add_argument("--out", default="", help="CSV of the diffusers samples (default: none)")

    add("gpu-bench", cmd_gpu_bench, "the seed jobs timed on CUDA after a warm-up")

    s = add(
        "fixtures", cmd_fixtures, "regenerate the PyTorch fixtures of tests/fixtures", seed=None
    )
    s.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the fixtures into")
    s.add_argument(
        "--model",
        default=None,
        help="compute the CSVs from this model instead of training the 3,000-step one",
    )
    s = add(
        "class-fixtures",
        cmd_class_fixtures,
        "regenerate the class-conditioning fixtures of tests/fixtures",
        seed=None,
    )
    s.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the fixtures into")
    return p


def cmd_class_fixtures(a):
    """The class-conditioning fixtures: a model of the eight Gaussians conditioned on their
    components (CLASS_FIXTURE_STEPS steps, seed 42) and its predictions, conditional (every
    class and "no class") and guided, at fixed inputs."""
    out = a.out_dir
    os.makedirs(out, exist_ok=True)
    model, losses = train(CLASS_FIXTURE_STEPS, 42, data="8gaussians", classes=True)
    model.eval()
    save_model(model, os.path.join(out, CLASS_FIXTURE_MODEL))
    rs = np.random.RandomState(321)
    x = (2.0 * rs.standard_normal((256, 2))).astype(np.float32)
    t = rs.randint(0, T, size=256).astype(np.int64)
    c = (np.arange(256) % (model.classes + 1)).astype(np.int64)
    with torch.no_grad():
        eps = model(
            torch.from_numpy(x), torch.from_numpy(t).float() / T, torch.from_numpy(c)
        ).numpy()
    write_csv(
        os.path.join(out, "class_eps_ref.csv"),
        ["x0", "x1", "t", "class", "eps0", "eps1"],
        [x[:, 0], x[:, 1], t.tolist(), c.tolist(), eps[:, 0], eps[:, 1]],
    )
    # Guided predictions at w = 2.5, each row's class below C.
    w = torch.tensor(2.5, dtype=torch.float32)
    cols = [[], [], [], [], [], []]
    with torch.no_grad():
        for i in range(64):
            cls = i % model.classes
            e = guided_eps(model, torch.from_numpy(x[i : i + 1]), int(t[i]), cls, w).numpy()
            for col, v in zip(cols, (x[i, 0], x[i, 1], int(t[i]), cls, e[0, 0], e[0, 1])):
                col.append(v)
    write_csv(
        os.path.join(out, "class_guided_ref.csv"),
        ["x0", "x1", "t", "class", "eps0", "eps1"],
        cols,
    )
    print(json.dumps({"model": CLASS_FIXTURE_MODEL, "train_loss_last": losses[-1]}))


def main(argv=None):
    a = parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        a.fn(a)
    except (OSError, RuntimeError, ValueError, ImportError) as e:
        print(f"ddpm.py {a.cmd}: " + " ".join(str(e).split()), file=sys.stderr)  # one line
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
