"""How finite-step SGD breaks the conservation laws of parameter symmetries: exact discrete
recursions, the continuous forms of "Symmetry and Broken Conservation Laws in Deep Learning
Dynamics" (Kunin et al., ICLR 2021), and the BatchNorm-as-RMSProp picture of "Noether's
Learning Dynamics: Role of Symmetry Breaking in Neural Networks" (Tanaka & Kunin, NeurIPS 2021).

Conventions (PyTorch SGD): d_k = g_k + lambda theta_k, v_{k+1} = beta v_k + (1 - delta) d_k
(v_1 = d_0), theta_{k+1} = theta_k - eta v_{k+1}. Per group, with the gradient constraint
<g, X_A> = 0 holding for every mini-batch, the exact identities are

    quadratic (scale q = |theta_A|^2, rescale c = |theta_A1|^2 - |theta_A2|^2):
        p_{k+1} = beta_k (p_k - eta_{k-1} V_k) + (1 - delta) lambda_k q_k
        q_{k+1} = q_k - 2 eta_k p_{k+1} + eta_k^2 V_{k+1}
    translation (s = <theta_A, 1>):
        u_{k+1} = beta_k u_k + (1 - delta) lambda_k s_k,   s_{k+1} = s_k - eta_k u_{k+1}

with p_k = <theta_{k-1}, v_k> (the discrete Noether charge), V_k = |v_k|^2 (signed over A1, A2
for rescale) and p_0 = V_0 = 0 (the (1 - delta) factor is 1 at the first step). With beta = 0 they
reduce to q_{k+1} = (1 - eta lambda)^2 q_k + eta^2 |g_k|^2 and s_n = (1 - eta lambda)^n s_0.
Every array is float64 with steps along axis 0 and groups along axis 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# The recursions run step by step on float64 NumPy arrays of one value per group: a step is a few
# vector operations, which NumPy does with less fixed cost per operation than torch.


def _array(value) -> np.ndarray:
    return (value.detach().cpu().double().numpy() if torch.is_tensor(value)
            else np.asarray(value, dtype=np.float64))


def _per_step(value, steps: int) -> np.ndarray:
    value = _array(value)
    return np.broadcast_to(value, (steps,)) if value.ndim == 0 else value


def exact_quadratic(q0: torch.Tensor, energy: torch.Tensor, lr, weight_decay, momentum=0.0, dampening=0.0,
                    decay_term: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted (q_0..q_n, p_1..p_n) from q_0 and the measured update energies V_1..V_n (`energy`,
    shape (n, groups)); hyper-parameters per step (n,) or constant. `decay_term` (n, groups):
    the measured <theta_k, lambda theta_k> = sum_i lambda_i |theta_i,k|^2 (signed) replacing
    lambda_k q_k, for groups whose parameters decay at different rates."""
    energy = _array(energy)
    n = energy.shape[0]
    eta, lam, beta, delta = (_per_step(x, n) for x in (lr, weight_decay, momentum, dampening))
    decay_term = None if decay_term is None else _array(decay_term)
    q = np.empty((n + 1,) + energy.shape[1:])
    p = np.empty(energy.shape)
    q[0] = _array(q0)
    previous = np.zeros(energy.shape[1:])
    for k in range(n):
        damping = 1 - delta[k] if k else 1.0
        decay = lam[k] * q[k] if decay_term is None else decay_term[k]
        carried = beta[k] * (previous - eta[k - 1] * energy[k - 1]) if k else 0.0
        previous = carried + damping * decay
        p[k] = previous
        q[k + 1] = q[k] - 2 * eta[k] * previous + eta[k] ** 2 * energy[k]
    return torch.from_numpy(q), torch.from_numpy(p)


def exact_translation(s0: torch.Tensor, steps: int, lr, weight_decay, momentum=0.0, dampening=0.0) -> torch.Tensor:
    """Predicted s_0..s_n: data-independent (the gradient has no component along 1_A)."""
    eta, lam, beta, delta = (_per_step(x, steps) for x in (lr, weight_decay, momentum, dampening))
    start = _array(s0)
    s = np.empty((steps + 1,) + start.shape)
    s[0], u = start, np.zeros(start.shape)
    for k in range(steps):
        u = beta[k] * u + lam[k] * (1 - delta[k] if k else 1.0) * s[k]
        s[k + 1] = s[k] - eta[k] * u
    return torch.from_numpy(s)


def continuous_sgd_quadratic(q0: torch.Tensor, gradient_energy: torch.Tensor, lr, weight_decay) -> torch.Tensor:
    """Kunin et al.'s gradient-flow form for SGD with weight decay,
    q(t) = e^{-2 lambda t} q(0) + eta int_0^t e^{-2 lambda (t - tau)} |g_A(tau)|^2 dtau, t = eta k,
    evaluated on the steps with the measured |g_A,k|^2 (`gradient_energy`, (n, groups))."""
    forcing = _array(gradient_energy)
    n = forcing.shape[0]
    eta, lam = (_per_step(x, n) for x in (lr, weight_decay))
    q = np.empty((n + 1,) + forcing.shape[1:])
    q[0] = _array(q0)
    for k in range(n):
        q[k + 1] = math.exp(-2 * lam[k] * eta[k]) * q[k] + eta[k] ** 2 * forcing[k]
    return torch.from_numpy(q)


def continuous_sgd_translation(s0: torch.Tensor, steps: int, lr, weight_decay) -> torch.Tensor:
    """s(t) = e^{-lambda t} s(0), t = sum of the learning rates so far."""
    eta, lam = (_per_step(x, steps) for x in (lr, weight_decay))
    exponent = np.concatenate([[0.0], np.cumsum(lam * eta)])
    return torch.from_numpy(np.exp(-exponent)[:, None] * _array(s0)[None, :])


def _oscillator_step(h: float, gamma: float, omega2: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact one-step propagator (E, forcing column F) of x'' + 2 gamma x' + omega^2 x = f, f held
    constant over the step (zero-order hold), for the state (x, x')."""
    from scipy.linalg import expm

    step = expm(np.array([[0.0, 1.0, 0.0], [-omega2, -2 * gamma, 1.0], [0.0, 0.0, 0.0]]) * h)
    return step[:2, :2], step[:2, 2]


def continuous_momentum(x0: torch.Tensor, forcing: torch.Tensor, lr, weight_decay, momentum, dampening=0.0,
                        translation: bool = False) -> torch.Tensor:
    """Kunin et al.'s damped-oscillator form for SGD with momentum beta > 0 (step h = eta (1 - delta)):
    x'' + 2 gamma x' + omega^2 x = f with gamma = (1 - beta) / (h (1 + beta)) and omega^2 =
    4 lambda / (h (1 + beta)) for q or c, f = 2 |v_A|^2 (`forcing` is |v_A,k+1|^2, (n, groups));
    omega^2 = 2 lambda / (h (1 + beta)) and f = 0 for translation. x(0) = x0, x'(0) = 0. Integrated
    exactly step by step (a 2x2 matrix exponential), so nothing overflows however long the run."""
    forcing = _array(forcing)
    n = forcing.shape[0]
    eta, lam, beta, delta = (_per_step(x, n) for x in (lr, weight_decay, momentum, dampening))
    start = _array(x0)
    out = np.empty((n + 1,) + start.shape)
    out[0] = start
    position, velocity = start.copy(), np.zeros(start.shape)
    cache: dict[tuple[float, float, float], tuple[np.ndarray, np.ndarray]] = {}
    for k in range(n):
        h = float(eta[k] * (1 - delta[k]))
        key = (h, float(lam[k]), float(beta[k]))
        if key not in cache:
            gamma = (1 - key[2]) / (h * (1 + key[2]))
            omega2 = (2 if translation else 4) * key[1] / (h * (1 + key[2]))
            cache[key] = _oscillator_step(h, gamma, omega2)
        (e00, e01), (e10, e11) = cache[key][0]
        c0, c1 = cache[key][1]
        f = 0.0 if translation else 2 * forcing[k]
        position, velocity = e00 * position + e01 * velocity + c0 * f, e10 * position + e11 * velocity + c1 * f
        out[k + 1] = position
    return torch.from_numpy(out)


def nld_radius4(q0: torch.Tensor, gradient_energy: torch.Tensor, q: torch.Tensor, lr, weight_decay, momentum,
                coherence: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Noether's Learning Dynamics, Eq. 17 (inertia dropped): r^4(t) = e^{-4 k t / mu} r^4(0) +
    (4 m / mu^3) int e^{-4 k (t - tau) / mu} kappa |g_hat|^2 dtau, with mass m = eta (1 + beta) / 2,
    friction mu = 1 - beta, k = lambda and |g_hat|^2 = q |g|^2 the gradient at unit norm (`q`: the
    measured q_k). The paper's closure has kappa = 1; under mini-batch noise the measured coherence
    kappa = (1 - beta)^2 |v|^2 / |d|^2 (about (1 - beta) / (1 + beta)) corrects it. Returns r^4 = q^2."""
    forcing, measured = _array(gradient_energy), _array(q)
    n = forcing.shape[0]
    eta, lam, beta = (_per_step(x, n) for x in (lr, weight_decay, momentum))
    kappa = _array(coherence)
    r4 = np.empty((n + 1,) + forcing.shape[1:])
    r4[0] = _array(q0) ** 2
    for k in range(n):
        m, mu = eta[k] * (1 + beta[k]) / 2, 1 - beta[k]
        rate = 4 * lam[k] / mu
        decay = math.exp(-rate * eta[k])
        weight = (1 - decay) / rate if rate > 0 else eta[k]
        source = 4 * m / mu ** 3 * (kappa[k] if kappa.ndim else kappa) * measured[k] * forcing[k]
        r4[k + 1] = decay * r4[k] + weight * source
    return torch.from_numpy(r4)


def equilibrium_angular_step(lr: float, weight_decay: float, momentum: float = 0.0) -> float:
    """The angular update per step of a scale-invariant group at equilibrium, sqrt(2 eta lambda /
    (1 + beta)), independent of the data ("Spherical Motion Dynamics", Wan et al. 2021)."""
    return math.sqrt(2 * lr * weight_decay / (1 + momentum))


def angular_step(q_before: torch.Tensor, charge: torch.Tensor, energy: torch.Tensor,
                 lr: torch.Tensor | float) -> torch.Tensor:
    """The angle (radians) between theta_k and theta_{k+1} = theta_k - eta v_{k+1}, from
    q_k, p_{k+1} = <theta_k, v_{k+1}> and V_{k+1}: atan2(eta |v_perp|, |theta_k| - eta p / |theta_k|)."""
    radius = q_before.sqrt()
    radial = charge / radius
    perpendicular = (energy - radial ** 2).clamp_min(0).sqrt()
    return torch.atan2(lr * perpendicular, radius - lr * radial)
