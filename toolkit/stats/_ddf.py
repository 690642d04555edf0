"""Denominator degrees of freedom for contrasts of a REML fit: Satterthwaite and Kenward–Roger.

References
----------
Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance components.
Biometrics Bulletin 2(6), 110–114. doi:10.2307/3002019

Kenward, M. G. & Roger, J. H. (1997). Small sample inference for fixed effects from restricted maximum
likelihood. Biometrics 53(3), 983–997. doi:10.2307/2533558
"""

from __future__ import annotations

import numpy as np

from toolkit.stats._reml import RemlFit


def _pinv_info(info: np.ndarray) -> np.ndarray:
    # a parameter on its boundary makes the information singular; the pseudo-inverse drops that direction
    return np.linalg.pinv(info, rcond=1e-12, hermitian=True)


def satterthwaite(
    contrasts: np.ndarray, fit: RemlFit, info: dict, *, information: str = "observed"
) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors and Satterthwaite df of each row ``c`` of ``contrasts`` (shape (m, p)).

    df = 2 (c'Ac)^2 / (g' Cov(phi) g), with g_k = d(c'Ac)/d phi_k = c'A Q_k A c and Cov(phi) the inverse
    of the REML information (observed by default, as SAS PROC MIXED and the R package mmrm use).
    """
    cov_phi = _pinv_info(info[information])
    a = fit.cov_beta
    ca = contrasts @ a  # (m, p)
    var = np.einsum("mp,mp->m", ca, contrasts)
    grad = np.einsum("mc,kcd,md->mk", ca, info["q_k"], ca)
    denom = np.einsum("mk,kl,ml->m", grad, cov_phi, grad)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denom > 0, 2.0 * var**2 / denom, np.inf)
    return np.sqrt(var), df


def kenward_roger_covariance(fit: RemlFit, info: dict) -> np.ndarray:
    """Kenward–Roger adjusted covariance of beta: Phi + 2 Phi [sum W_ij (Q_ij - P_i Phi P_j - R_ij / 4)] Phi.

    Computed in the natural covariance parameters, where R_ij vanishes for the linear structures
    (unstructured, compound symmetry), as SAS's ``DDFM=KR`` does.
    """
    w = _pinv_info(info["observed"])
    phi = fit.cov_beta
    q_k = info["q_k"]  # = -P_i
    pphp = np.einsum("icd,de,jef->ijcf", q_k, phi, q_k)
    inner = np.einsum("ij,ijcd->cd", w, info["r_kl"] - pphp - 0.25 * info["r2_kl"])
    adjusted = phi + 2.0 * phi @ inner @ phi
    return 0.5 * (adjusted + adjusted.T)


def kenward_roger(contrasts: np.ndarray, fit: RemlFit, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """Adjusted standard errors and Kenward–Roger df for single-row contrasts (l = 1).

    For one contrast c the quantities A1 and A2 of Kenward & Roger (1997) coincide:
    A1 = A2 = g'Wg / (c'Phi c)^2 with g_i = c'Phi Q_i Phi c, so m = 2 / A2 and lambda = 1. W is the
    inverse of the observed REML information, as SAS PROC MIXED and the R package mmrm use; with it the
    fev_data reference (SE 0.66124, df 160.73) is reproduced, with the expected information it is not.
    """
    w = _pinv_info(info["observed"])
    phi = fit.cov_beta
    adjusted = kenward_roger_covariance(fit, info)
    cp = contrasts @ phi
    var = np.einsum("mp,mp->m", cp, contrasts)
    grad = np.einsum("mc,kcd,md->mk", cp, info["q_k"], cp)
    a2 = np.einsum("mk,kl,ml->m", grad, w, grad) / var**2
    a1 = a2
    ell = 1.0
    b = (a1 + 6.0 * a2) / (2.0 * ell)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = ((ell + 1.0) * a1 - (ell + 4.0) * a2) / ((ell + 2.0) * a2)
        denom = 3.0 * ell + 2.0 * (1.0 - g)
        c1, c2, c3 = g / denom, (ell - g) / denom, (ell + 2.0 - g) / denom
        e_star = 1.0 / (1.0 - a2 / ell)
        v_star = (2.0 / ell) * (1.0 + c1 * b) / ((1.0 - c2 * b) ** 2 * (1.0 - c3 * b))
        rho = v_star / (2.0 * e_star**2)
        m = 4.0 + (ell + 2.0) / (ell * rho - 1.0)
    m = np.where(np.isfinite(m) & (m > 0), m, np.inf)
    se = np.sqrt(np.einsum("mp,pq,mq->m", contrasts, adjusted, contrasts))
    return se, m


def _full_rank_rows(contrasts: np.ndarray, fit: RemlFit) -> tuple[np.ndarray, np.ndarray]:
    """Orthogonalised rows spanning ``contrasts`` (eigenvectors of L Phi L'), with their variances.

    Rows that are linear combinations of the others (and all-zero rows) are dropped, so the numerator
    degrees of freedom of an F test are the rank of L.
    """
    cov = contrasts @ fit.cov_beta @ contrasts.T
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    keep = vals > 1e-10 * max(float(vals.max(initial=0.0)), 1e-300)
    return vecs[:, keep].T @ contrasts, vals[keep]


def _combined_df(nu: np.ndarray) -> float:
    """Denominator df of an F test from the df of its orthogonal t statistics (Fai & Cornelius 1996).

    E = sum nu_m / (nu_m - 2); df = 2 E / (E - q). As SAS and the R package mmrm: a component with
    nu_m <= 2 gives df = 2, and equal components give their common value.
    """
    nu = np.asarray(nu, dtype=float)
    if len(nu) == 1:
        return float(nu[0])
    if np.any(nu <= 2):
        return 2.0
    if np.ptp(nu) < 1e-8 * nu.mean():
        return float(nu.mean())
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - len(nu))


def satterthwaite_f(contrasts: np.ndarray, fit: RemlFit, info: dict) -> dict[str, float]:
    """Wald F test of L beta = 0 with Satterthwaite denominator df (SAS ``DDFM=SATTERTHWAITE``).

    F = (L b)' (L Phi L')^-1 (L b) / q is the mean of the squared t statistics of q orthogonal contrasts;
    its denominator df combine their Satterthwaite df (:func:`_combined_df`).
    """
    rows, var = _full_rank_rows(np.atleast_2d(contrasts), fit)
    if len(var) == 0:
        raise ValueError("the hypothesis matrix has rank 0: nothing to test")
    t2 = (rows @ fit.beta) ** 2 / var
    _, nu = satterthwaite(rows, fit, info)
    q = len(var)
    return {"df_num": float(q), "df_den": _combined_df(nu), "f_value": float(t2.sum() / q)}


def kenward_roger_f(contrasts: np.ndarray, fit: RemlFit, info: dict) -> dict[str, float]:
    """Kenward–Roger F test of L beta = 0 for an L of any rank l (Kenward & Roger 1997, section 4).

    With Theta = L'(L Phi L')^-1 L, A1 = sum W_ij tr(Theta Phi P_i Phi) tr(Theta Phi P_j Phi) and
    A2 = sum W_ij tr(Theta Phi P_i Phi Theta Phi P_j Phi), the scaled statistic lambda F, with F the Wald
    statistic on the adjusted covariance divided by l, is referred to F(l, m). For l = 1 this is the
    t test of :func:`kenward_roger`; for complete multivariate normal data with an unstructured
    covariance it reproduces Hotelling's T^2 test exactly.
    """
    rows, _ = _full_rank_rows(np.atleast_2d(contrasts), fit)
    ell = float(len(rows))
    if ell == 0:
        raise ValueError("the hypothesis matrix has rank 0: nothing to test")
    w = _pinv_info(info["observed"])
    phi = fit.cov_beta
    adjusted = kenward_roger_covariance(fit, info)
    theta = rows.T @ np.linalg.solve(rows @ phi @ rows.T, rows)
    tp = np.einsum("cd,de,kef,fg->kcg", theta, phi, info["q_k"], phi, optimize=True)  # Theta Phi P_k Phi
    traces = np.einsum("kcc->k", tp)
    a1 = float(traces @ w @ traces)
    a2 = float(np.einsum("ij,icd,jdc->", w, tp, tp, optimize=True))
    b = (a1 + 6.0 * a2) / (2.0 * ell)
    g = ((ell + 1.0) * a1 - (ell + 4.0) * a2) / ((ell + 2.0) * a2) if a2 > 0 else 0.0
    denom = 3.0 * ell + 2.0 * (1.0 - g)
    c1, c2, c3 = g / denom, (ell - g) / denom, (ell + 2.0 - g) / denom
    e_star = 1.0 / (1.0 - a2 / ell)
    v_star = (2.0 / ell) * (1.0 + c1 * b) / ((1.0 - c2 * b) ** 2 * (1.0 - c3 * b))
    rho = v_star / (2.0 * e_star**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = 4.0 + (ell + 2.0) / (ell * rho - 1.0)
    if not (np.isfinite(m) and m > 2):
        m = np.inf
    lam = 1.0 if not np.isfinite(m) else m / (e_star * (m - 2.0))
    est = rows @ fit.beta
    wald = float(est @ np.linalg.solve(rows @ adjusted @ rows.T, est))
    return {"df_num": ell, "df_den": float(m), "f_value": lam * wald / ell, "scale": float(lam)}
