# Reference values of the rank tests: R's wilcox.test (exact below 50 per sample without ties, normal
# approximation with continuity correction otherwise) and exactRankTests::wilcox.exact (exact with ties).
# Usage: Rscript rank_tests.R <output-dir>; writes rank_tests_data.csv and rank_tests_results.csv.
suppressPackageStartupMessages(library(exactRankTests))
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "."
set.seed(20240517)
cases <- list(
  list(id = "mw_20x20", kind = "two", x = rnorm(20, 0.7), y = rnorm(20)),
  list(id = "mw_20x20_shift", kind = "two", x = rnorm(20, 0.75), y = rnorm(20)),
  list(id = "mw_9x12", kind = "two", x = rnorm(9, 1), y = rnorm(12)),
  list(id = "mw_31x44", kind = "two", x = rnorm(31, 0.4), y = rnorm(44)),
  list(id = "mw_49x49", kind = "two", x = rnorm(49, 0.3), y = rnorm(49)),
  list(id = "mw_tied_15x18", kind = "two", x = round(rnorm(15, 0.8)), y = round(rnorm(18))),
  list(id = "mw_tied_40x35", kind = "two", x = round(2 * rnorm(40, 0.5)) / 2, y = round(2 * rnorm(35)) / 2),
  list(id = "mw_60x55", kind = "two", x = rnorm(60, 0.4), y = rnorm(55)),
  list(id = "mw_tied_70x52", kind = "two", x = round(rnorm(70, 0.3)), y = round(rnorm(52))),
  list(id = "sr_15", kind = "one", x = rnorm(15, 0.6)),
  list(id = "sr_tied_22", kind = "one", x = round(rnorm(22, 0.5))),
  list(id = "sr_60", kind = "one", x = rnorm(60, 0.3))
)
data <- do.call(rbind, lapply(cases, function(k) {
  rbind(data.frame(case = k$id, sample = "x", value = k$x),
        if (k$kind == "two") data.frame(case = k$id, sample = "y", value = k$y))
}))
results <- do.call(rbind, lapply(cases, function(k) {
  tied <- if (k$kind == "two") anyDuplicated(c(k$x, k$y)) > 0 else (anyDuplicated(abs(k$x)) > 0 || any(k$x == 0))
  small <- if (k$kind == "two") length(k$x) < 50 && length(k$y) < 50 else sum(k$x != 0) < 50
  y <- if (k$kind == "two") k$y else NULL
  if (small && tied) {
    r <- wilcox.exact(k$x, y, conf.int = TRUE)
    source <- "exactRankTests::wilcox.exact"
  } else {
    r <- suppressWarnings(wilcox.test(k$x, y, conf.int = TRUE))
    source <- "stats::wilcox.test"
  }
  data.frame(case = k$id, source = source, statistic = unname(r$statistic), p_value = r$p.value,
             ci_low = r$conf.int[1], ci_high = r$conf.int[2], exact = small)
}))
write.csv(data, file.path(out, "rank_tests_data.csv"), row.names = FALSE)
write.csv(results, file.path(out, "rank_tests_results.csv"), row.names = FALSE)
