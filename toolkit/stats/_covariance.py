"""Covariance structures over visits for the MMRM: unstructured, compound symmetry, heterogeneous AR(1).

Each structure has two parametrisations:

* an unconstrained one (``theta``) for the optimiser, in which every value gives a positive-definite matrix
  (log-Cholesky for unstructured, log-variances and a transformed correlation for the others);
* the "natural" one (``phi``) that SAS PROC MIXED reports and in which the degrees-of-freedom methods are
  computed: the variances and covariances themselves for unstructured, (covariance, residual) for compound
  symmetry, (standard deviations, correlation) for heterogeneous AR(1).
"""

from __future__ import annotations

import numpy as np

from toolkit.errors import DataError

__all__ = ["COVARIANCE_STRUCTURES", "CovarianceStructure", "make_structure"]


class CovarianceStructure:
    """Base class: a T x T visit covariance matrix as a function of its parameters."""

    #: short name as accepted by :func:`toolkit.stats.mmrm`
    name: str = ""
    #: whether Sigma is linear in phi (then its second derivatives vanish)
    linear: bool = True

    def __init__(self, n_visits: int) -> None:
        self.n_visits = n_visits

    # -- unconstrained parametrisation ---------------------------------------------------------------
    def n_theta(self) -> int:
        raise NotImplementedError

    def sigma(self, theta: np.ndarray) -> np.ndarray:
        """Covariance matrix for the optimiser's parameters."""
        raise NotImplementedError

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """d Sigma / d theta_k, shape (q, T, T)."""
        raise NotImplementedError

    def theta_from_sigma(self, sigma: np.ndarray) -> np.ndarray:
        """Starting values from a (positive-definite) moment estimate."""
        raise NotImplementedError

    # -- natural parametrisation ---------------------------------------------------------------------
    def phi_from_theta(self, theta: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def phi_names(self, visits: list) -> list[str]:
        raise NotImplementedError

    def jacobian_phi(self, phi: np.ndarray) -> np.ndarray:
        """d Sigma / d phi_k, shape (q, T, T)."""
        raise NotImplementedError

    def hessian_phi(self, phi: np.ndarray) -> np.ndarray:
        """d2 Sigma / d phi_k d phi_l, shape (q, q, T, T); zero for linear structures."""
        q = len(phi)
        return np.zeros((q, q, self.n_visits, self.n_visits))


class Unstructured(CovarianceStructure):
    """Unstructured: every variance and covariance free (T(T+1)/2 parameters)."""

    name = "unstructured"

    def __init__(self, n_visits: int) -> None:
        super().__init__(n_visits)
        self._rows, self._cols = np.tril_indices(n_visits)

    def n_theta(self) -> int:
        return len(self._rows)

    def _chol(self, theta: np.ndarray) -> np.ndarray:
        lower = np.zeros((self.n_visits, self.n_visits))
        lower[self._rows, self._cols] = theta
        diag = np.arange(self.n_visits)
        lower[diag, diag] = np.exp(lower[diag, diag])
        return lower

    def sigma(self, theta: np.ndarray) -> np.ndarray:
        lower = self._chol(theta)
        return lower @ lower.T

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        lower = self._chol(theta)
        t = self.n_visits
        q = len(theta)
        # d Sigma / d L[a, b] = E_ab L' + L E_ba; the diagonal is exp-transformed (chain rule: L[a, a])
        value = np.where(self._rows == self._cols, lower[self._rows, self._rows], 1.0)
        half = np.zeros((q, t, t))
        half[np.arange(q), self._rows, :] = value[:, None] * lower[:, self._cols].T
        return half + half.transpose(0, 2, 1)

    def theta_from_sigma(self, sigma: np.ndarray) -> np.ndarray:
        lower = np.linalg.cholesky(sigma)
        lower[np.diag_indices_from(lower)] = np.log(np.diag(lower))
        return lower[self._rows, self._cols]

    def phi_from_theta(self, theta: np.ndarray) -> np.ndarray:
        return self.sigma(theta)[self._rows, self._cols]

    def phi_names(self, visits: list) -> list[str]:
        return [
            f"var({visits[a]})" if a == b else f"cov({visits[b]},{visits[a]})"
            for a, b in zip(self._rows, self._cols, strict=True)
        ]

    def jacobian_phi(self, phi: np.ndarray) -> np.ndarray:
        t = self.n_visits
        out = np.zeros((len(phi), t, t))
        for k, (a, b) in enumerate(zip(self._rows, self._cols, strict=True)):
            out[k, a, b] = 1.0
            out[k, b, a] = 1.0
        return out


class CompoundSymmetry(CovarianceStructure):
    """Compound symmetry: one variance, one common covariance (SAS ``TYPE=CS``)."""

    name = "cs"

    def n_theta(self) -> int:
        return 2

    def _lower_rho(self) -> float:
        return -1.0 / (self.n_visits - 1) if self.n_visits > 1 else -1.0

    def _rho(self, z: float) -> float:
        lo = self._lower_rho()
        return lo + (1.0 - lo) / (1.0 + np.exp(-z))

    def sigma(self, theta: np.ndarray) -> np.ndarray:
        var = np.exp(theta[0])
        rho = self._rho(theta[1])
        t = self.n_visits
        return var * ((1.0 - rho) * np.eye(t) + rho * np.ones((t, t)))

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        t = self.n_visits
        var = np.exp(theta[0])
        lo = self._lower_rho()
        s = 1.0 / (1.0 + np.exp(-theta[1]))
        drho = (1.0 - lo) * s * (1.0 - s)
        return np.stack([self.sigma(theta), var * drho * (np.ones((t, t)) - np.eye(t))])

    def theta_from_sigma(self, sigma: np.ndarray) -> np.ndarray:
        t = self.n_visits
        var = float(np.mean(np.diag(sigma)))
        off = float((sigma.sum() - np.trace(sigma)) / max(t * (t - 1), 1))
        lo = self._lower_rho()
        rho = np.clip(off / var, lo + 1e-3, 1 - 1e-3)
        p = (rho - lo) / (1.0 - lo)
        return np.array([np.log(var), np.log(p / (1 - p))])

    def phi_from_theta(self, theta: np.ndarray) -> np.ndarray:
        var = np.exp(theta[0])
        rho = self._rho(theta[1])
        return np.array([rho * var, (1.0 - rho) * var])

    def phi_names(self, visits: list) -> list[str]:
        return ["cs_covariance", "residual"]

    def jacobian_phi(self, phi: np.ndarray) -> np.ndarray:
        t = self.n_visits
        return np.stack([np.ones((t, t)), np.eye(t)])


class HeterogeneousAR1(CovarianceStructure):
    """Heterogeneous first-order autoregressive (SAS ``TYPE=ARH(1)``): sd per visit, one correlation."""

    name = "ar1h"
    linear = False

    def n_theta(self) -> int:
        return self.n_visits + 1

    def _lag(self) -> np.ndarray:
        idx = np.arange(self.n_visits)
        return np.abs(idx[:, None] - idx[None, :])

    def _build(self, sd: np.ndarray, rho: float) -> np.ndarray:
        return np.outer(sd, sd) * rho ** self._lag()

    def sigma(self, theta: np.ndarray) -> np.ndarray:
        return self._build(np.exp(theta[:-1]), np.tanh(theta[-1]))

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        t = self.n_visits
        sd = np.exp(theta[:-1])
        jac_phi = self.jacobian_phi(np.append(sd, np.tanh(theta[-1])))
        scale = np.append(sd, 1.0 - np.tanh(theta[-1]) ** 2)
        return jac_phi * scale[:, None, None] if t else jac_phi

    def theta_from_sigma(self, sigma: np.ndarray) -> np.ndarray:
        sd = np.sqrt(np.diag(sigma))
        corr = sigma / np.outer(sd, sd)
        rho = float(np.clip(np.mean(np.diag(corr, 1)) if self.n_visits > 1 else 0.0, -0.95, 0.95))
        return np.append(np.log(sd), np.arctanh(rho))

    def phi_from_theta(self, theta: np.ndarray) -> np.ndarray:
        return np.append(np.exp(theta[:-1]), np.tanh(theta[-1]))

    def phi_names(self, visits: list) -> list[str]:
        return [f"sd({v})" for v in visits] + ["rho"]

    def jacobian_phi(self, phi: np.ndarray) -> np.ndarray:
        t = self.n_visits
        sd, rho = phi[:-1], phi[-1]
        lag = self._lag()
        corr = rho**lag
        out = np.zeros((t + 1, t, t))
        for k in range(t):
            e = np.zeros(t)
            e[k] = 1.0
            out[k] = (np.outer(e, sd) + np.outer(sd, e)) * corr
        with np.errstate(divide="ignore", invalid="ignore"):
            dcorr = np.where(lag > 0, lag * rho ** np.maximum(lag - 1, 0), 0.0)
        out[t] = np.outer(sd, sd) * dcorr
        return out

    def hessian_phi(self, phi: np.ndarray) -> np.ndarray:
        # second derivatives by central differences of the analytic first derivatives
        q = len(phi)
        out = np.zeros((q, q, self.n_visits, self.n_visits))
        for k in range(q):
            h = 1e-6 * max(1.0, abs(phi[k]))
            up, down = phi.copy(), phi.copy()
            up[k] += h
            down[k] -= h
            out[k] = (self.jacobian_phi(up) - self.jacobian_phi(down)) / (2 * h)
        return 0.5 * (out + out.transpose(1, 0, 2, 3))


#: accepted names of covariance structures
COVARIANCE_STRUCTURES: dict[str, type[CovarianceStructure]] = {
    "unstructured": Unstructured,
    "un": Unstructured,
    "cs": CompoundSymmetry,
    "compound-symmetry": CompoundSymmetry,
    "ar1h": HeterogeneousAR1,
    "arh1": HeterogeneousAR1,
}


def make_structure(name: str, n_visits: int) -> CovarianceStructure:
    """The covariance structure called ``name`` over ``n_visits`` visits."""
    key = str(name).lower()
    if key not in COVARIANCE_STRUCTURES:
        raise DataError(
            f"unknown covariance structure {name!r}",
            details=["accepted: 'unstructured' (or 'un'), 'cs', 'ar1h'"],
        )
    return COVARIANCE_STRUCTURES[key](n_visits)
