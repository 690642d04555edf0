# Reference values of the Kaplan-Meier median and its 95 % limits: the table R's print.survfit shows
# (survival::survfit, log-log pointwise intervals), including curves that sit exactly at 0.5 over a step.
# Usage: Rscript kaplan_meier.R <output-dir>; writes kaplan_meier_data.csv and kaplan_meier_results.csv.
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "."
set.seed(20240518)
cases <- list(
  list(id = "flat_step", time = c(1, 2, 3, 4, 5, 7, 8, 9, 10, 12), event = rep(1, 10)),
  list(id = "flat_to_end", time = c(1, 2, 3, 4, 6, 6, 7, 8), event = c(1, 1, 1, 1, 0, 0, 0, 0)),
  list(id = "flat_over_censoring", time = c(1, 2, 3, 4, 5, 6, 7, 9, 10, 11), event = c(1, 1, 1, 1, 1, 0, 0, 1, 1, 1)),
  list(id = "not_reached", time = c(2, 4, 6, 8, 10, 12), event = c(1, 0, 0, 1, 0, 0))
)
for (i in 1:6) {
  n <- sample(8:40, 1)
  t <- pmin(sample(1:12, n, replace = TRUE), 12)
  cases[[length(cases) + 1]] <- list(id = paste0("sessions_", i), time = t, event = as.integer(runif(n) < 0.75 & t < 12))
}
data <- do.call(rbind, lapply(cases, function(k) data.frame(case = k$id, time = k$time, event = k$event)))
results <- do.call(rbind, lapply(cases, function(k) {
  tab <- summary(survfit(Surv(k$time, k$event) ~ 1, conf.type = "log-log"))$table
  data.frame(case = k$id, median = unname(tab["median"]), lcl = unname(tab["0.95LCL"]), ucl = unname(tab["0.95UCL"]))
}))
write.csv(data, file.path(out, "kaplan_meier_data.csv"), row.names = FALSE)
write.csv(results, file.path(out, "kaplan_meier_results.csv"), row.names = FALSE)
