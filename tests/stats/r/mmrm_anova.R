# Type III F statistics of an unstructured MMRM from R: nlme::gls with an unstructured correlation and
# visit-specific variances (REML), sum-to-zero contrasts, anova(type = "marginal"). The data are a
# three-arm trial over four visits with monotone dropout, drawn here.
# Usage: Rscript mmrm_anova.R <output-dir>; writes mmrm_anova_data.csv and mmrm_anova_results.csv.
suppressPackageStartupMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "."
set.seed(20240519)
n <- 150
visits <- c("S4", "S8", "S12", "FU")
arm <- sample(rep(c("SHAM", "EP", "MC"), each = n / 3))
stratum <- sample(c("lt45", "ge45"), n, replace = TRUE)
base <- rnorm(n, 50, 5)
sd <- c(2, 2.3, 2.7, 3.1)
corr <- 0.6^abs(outer(1:4, 1:4, "-"))
chol_cov <- chol(outer(sd, sd) * corr)
effect <- list(SHAM = c(0, 0, 0, 0), EP = c(-1, -2, -3, -2.5), MC = c(-0.5, -1.5, -2, -1.5))
rows <- list()
for (i in seq_len(n)) {
  e <- drop(rnorm(4) %*% chol_cov)
  y <- effect[[arm[i]]] - 0.1 * (base[i] - 50) + (stratum[i] == "ge45") * 0.8 + e
  last <- if (runif(1) < 0.2) sample(1:3, 1) else 4
  rows[[i]] <- data.frame(USUBJID = sprintf("P%03d", i), TRTP = arm[i], STRAT = stratum[i], BASE = base[i],
                          AVISIT = visits[1:last], AVISITN = (1:4)[1:last], CHG = y[1:last])
}
data <- do.call(rbind, rows)
options(contrasts = c("contr.sum", "contr.poly"))
fit_data <- data
fit_data$TRTP <- factor(fit_data$TRTP, levels = c("SHAM", "EP", "MC"))
fit_data$AVISIT <- factor(fit_data$AVISIT, levels = visits)
fit_data$STRAT <- factor(fit_data$STRAT, levels = c("ge45", "lt45"))
fit <- gls(CHG ~ STRAT + TRTP * AVISIT + BASE * AVISIT, data = fit_data,
           correlation = corSymm(form = ~ AVISITN | USUBJID), weights = varIdent(form = ~ 1 | AVISIT),
           method = "REML", control = glsControl(msMaxIter = 500, tolerance = 1e-10, msTol = 1e-12))
tab <- anova(fit, type = "marginal")
results <- data.frame(term = rownames(tab), df_num = tab$numDF, f_value = tab$`F-value`)
results <- results[results$term != "(Intercept)", ]
write.csv(data, file.path(out, "mmrm_anova_data.csv"), row.names = FALSE)
write.csv(results, file.path(out, "mmrm_anova_results.csv"), row.names = FALSE)
