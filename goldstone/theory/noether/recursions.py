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

import functools
import math

import numpy as np
import torch

# The recursions run step by step on float64 NumPy arrays of one value per group: a step is a few
# vector operations, which NumPy does with less fixed cost per operation than torch. Each operation
# writes into preallocated rows (``out=``), in the order of the formula as written, so the results
# are those of the plain expressions to the bit; `out` (a float64 CPU tensor or array of the
# result's shape, e.g. a block of columns of a larger result) takes the result without a copy.


def _array(value) -> np.ndarray:
    return (value.detach().cpu().double().numpy() if torch.is_tensor(value)
            else np.asarray(value, dtype=np.float64))


def _per_step(value, steps: int) -> np.ndarray:
    value = _array(value)
    return np.broadcast_to(value, (steps,)) if value.ndim == 0 else value


def _output(out, shape: tuple[int, ...]) -> tuple[np.ndarray, torch.Tensor]:
    """A float64 array of `shape` to write the result into (`out`'s memory when given) and the
    tensor returned."""
    if out is None:
        array = np.empty(shape)
        return array, torch.from_numpy(array)
    array = out.numpy() if torch.is_tensor(out) else out
    if array.shape != shape or array.dtype != np.float64:
        raise ValueError(f"out: {array.dtype} {array.shape}, expected float64 {shape}")
    return array, (out if torch.is_tensor(out) else torch.from_numpy(out))


_mul, _add, _sub = np.multiply, np.add, np.subtract


def exact_quadratic(q0: torch.Tensor, energy: torch.Tensor, lr, weight_decay, momentum=0.0, dampening=0.0,
                    decay_term: torch.Tensor | None = None, out=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted (q_0..q_n, p_1..p_n) from q_0 and the measured update energies V_1..V_n (`energy`,
    shape (n, groups)); hyper-parameters per step (n,) or constant. `decay_term` (n, groups):
    the measured <theta_k, lambda theta_k> = sum_i lambda_i |theta_i,k|^2 (signed) replacing
    lambda_k q_k, for groups whose parameters decay at different rates. `out`: optional (q, p)
    to write into."""
    energy = _array(energy)
    n = energy.shape[0]
    eta, lam, beta, delta = (_per_step(x, n) for x in (lr, weight_decay, momentum, dampening))
    decay_term = None if decay_term is None else _array(decay_term)
    q, q_tensor = _output(None if out is None else out[0], (n + 1,) + energy.shape[1:])
    p, p_tensor = _output(None if out is None else out[1], energy.shape)
    q[0] = _array(q0)
    decay, carried = np.empty(energy.shape[1:]), np.empty(energy.shape[1:])
    for k in range(n):
        damping = 1 - delta[k] if k else 1.0
        # p_{k+1} = beta_k (p_k - eta_{k-1} V_k) + (1 - delta) lambda_k q_k
        if decay_term is None:
            _mul(lam[k], q[k], out=decay)
            _mul(damping, decay, out=decay)
        else:
            _mul(damping, decay_term[k], out=decay)
        if k:
            _mul(eta[k - 1], energy[k - 1], out=carried)
            _sub(p[k - 1], carried, out=carried)
            _mul(beta[k], carried, out=carried)
            _add(carried, decay, out=p[k])
        else:
            _add(0.0, decay, out=p[k])
        # q_{k+1} = q_k - 2 eta_k p_{k+1} + eta_k^2 V_{k+1}
        _mul(2 * eta[k], p[k], out=decay)
        _sub(q[k], decay, out=q[k + 1])
        _mul(eta[k] ** 2, energy[k], out=decay)
        _add(q[k + 1], decay, out=q[k + 1])
    return q_tensor, p_tensor


def exact_translation(s0: torch.Tensor, steps: int, lr, weight_decay, momentum=0.0, dampening=0.0,
                      out=None) -> torch.Tensor:
    """Predicted s_0..s_n: data-independent (the gradient has no component along 1_A)."""
    eta, lam, beta, delta = (_per_step(x, steps) for x in (lr, weight_decay, momentum, dampening))
    start = _array(s0)
    s, tensor = _output(out, (steps + 1,) + start.shape)
    s[0], u, pull = start, np.zeros(start.shape), np.empty(start.shape)
    for k in range(steps):
        # u_{k+1} = beta_k u_k + lambda_k (1 - delta) s_k,  s_{k+1} = s_k - eta_k u_{k+1}
        _mul(beta[k], u, out=u)
        _mul(lam[k] * (1 - delta[k] if k else 1.0), s[k], out=pull)
        _add(u, pull, out=u)
        _mul(eta[k], u, out=pull)
        _sub(s[k], pull, out=s[k + 1])
    return tensor


def continuous_sgd_quadratic(q0: torch.Tensor, gradient_energy: torch.Tensor, lr, weight_decay, out=None
                             ) -> torch.Tensor:
    """Kunin et al.'s gradient-flow form for SGD with weight decay,
    q(t) = e^{-2 lambda t} q(0) + eta int_0^t e^{-2 lambda (t - tau)} |g_A(tau)|^2 dtau, t = eta k,
    evaluated on the steps with the measured |g_A,k|^2 (`gradient_energy`, (n, groups))."""
    forcing = _array(gradient_energy)
    n = forcing.shape[0]
    eta, lam = (_per_step(x, n) for x in (lr, weight_decay))
    q, tensor = _output(out, (n + 1,) + forcing.shape[1:])
    q[0] = _array(q0)
    source = np.empty(forcing.shape[1:])
    for k in range(n):
        _mul(math.exp(-2 * lam[k] * eta[k]), q[k], out=q[k + 1])
        _mul(eta[k] ** 2, forcing[k], out=source)
        _add(q[k + 1], source, out=q[k + 1])
    return tensor


def continuous_sgd_translation(s0: torch.Tensor, steps: int, lr, weight_decay) -> torch.Tensor:
    """s(t) = e^{-lambda t} s(0), t = sum of the learning rates so far."""
    eta, lam = (_per_step(x, steps) for x in (lr, weight_decay))
    exponent = np.concatenate([[0.0], np.cumsum(lam * eta)])
    return torch.from_numpy(np.exp(-exponent)[:, None] * _array(s0)[None, :])


@functools.lru_cache(maxsize=1024)
def _oscillator_step(h: float, gamma: float, omega2: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact one-step propagator (E, forcing column F) of x'' + 2 gamma x' + omega^2 x = f, f held
    constant over the step (zero-order hold), for the state (x, x'). Cached: a run has few
    distinct steps, and SciPy's `expm` of this 3 x 3 matrix costs milliseconds where its BLAS
    threads compete for busy cores (the returned arrays are read-only)."""
    from scipy.linalg import expm

    step = expm(np.array([[0.0, 1.0, 0.0], [-omega2, -2 * gamma, 1.0], [0.0, 0.0, 0.0]]) * h)
    step.flags.writeable = False
    return step[:2, :2], step[:2, 2]


def continuous_momentum(x0: torch.Tensor, forcing: torch.Tensor, lr, weight_decay, momentum, dampening=0.0,
                        translation: bool = False, out=None) -> torch.Tensor:
    """Kunin et al.'s damped-oscillator form for SGD with momentum beta > 0 (step h = eta (1 - delta)):
    x'' + 2 gamma x' + omega^2 x = f with gamma = (1 - beta) / (h (1 + beta)) and omega^2 =
    4 lambda / (h (1 + beta)) for q or c, f = 2 |v_A|^2 (`forcing` is |v_A,k+1|^2, (n, groups));
    omega^2 = 2 lambda / (h (1 + beta)) and f = 0 for translation. x(0) = x0, x'(0) = 0. Integrated
    exactly step by step (a 2x2 matrix exponential), so nothing overflows however long the run."""
    forcing = _array(forcing)
    n = forcing.shape[0]
    eta, lam, beta, delta = (_per_step(x, n) for x in (lr, weight_decay, momentum, dampening))
    start = _array(x0)
    result, tensor = _output(out, (n + 1,) + start.shape)
    result[0] = start
    velocity, next_velocity = np.zeros(start.shape), np.empty(start.shape)
    f, term = np.empty(start.shape), np.empty(start.shape)
    key = None
    for k in range(n):
        h = float(eta[k] * (1 - delta[k]))
        if key != (h, float(lam[k]), float(beta[k])):
            key = (h, float(lam[k]), float(beta[k]))
            gamma = (1 - key[2]) / (h * (1 + key[2]))
            omega2 = (2 if translation else 4) * key[1] / (h * (1 + key[2]))
            (e00, e01), (e10, e11) = (row.tolist() for row in _oscillator_step(h, gamma, omega2)[0])
            c0, c1 = _oscillator_step(h, gamma, omega2)[1].tolist()
        # (x, x')_{k+1} = E (x, x')_k + F f_k, f_k = 2 V_{k+1} (0 for translation)
        position, following = result[k], result[k + 1]
        _mul(e00, position, out=following)
        _mul(e01, velocity, out=term)
        _add(following, term, out=following)
        _mul(e10, position, out=next_velocity)
        _mul(e11, velocity, out=term)
        _add(next_velocity, term, out=next_velocity)
        if translation:
            _add(following, c0 * 0.0, out=following)
            _add(next_velocity, c1 * 0.0, out=next_velocity)
        else:
            _mul(2, forcing[k], out=f)
            _mul(c0, f, out=term)
            _add(following, term, out=following)
            _mul(c1, f, out=term)
            _add(next_velocity, term, out=next_velocity)
        velocity, next_velocity = next_velocity, velocity
    return tensor


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
