# Good values for CervixScope's localisation tests, computed with RJafroc itself.
# Run: R_LIBS=<lib with RJafroc> Rscript good_values.R > dataset04_wafroc_or.json
suppressMessages(library(RJafroc))
ds <- dataset04
num <- function(x) sprintf("%.17g", as.numeric(x))
vec <- function(x) paste0("[", paste(num(x), collapse = ", "), "]")
foms <- as.matrix(UtilFigureOfMerit(ds, FOM = "wAFROC"))
st <- St(ds, FOM = "wAFROC", method = "OR", analysisOption = "RRRC")
frrc <- St(ds, FOM = "wAFROC", method = "OR", analysisOption = "FRRC")$FRRC
rrfc <- St(ds, FOM = "wAFROC", method = "OR", analysisOption = "RRFC")$RRFC
vc <- st$ANOVA$VarCom
out <- c(
  "{",
  sprintf('  "rjafroc_version": "%s",', as.character(packageVersion("RJafroc"))),
  '  "call": "St(dataset04, FOM = \\"wAFROC\\", method = \\"OR\\", analysisOption = \\"RRRC\\" | \\"FRRC\\" | \\"RRFC\\")",',
  sprintf('  "modalities": [%s],', paste0('"', rownames(foms), '"', collapse = ", ")),
  sprintf('  "readers": [%s],', paste0('"', colnames(foms), '"', collapse = ", ")),
  sprintf('  "wafroc_foms_by_modality": [%s],', paste(apply(foms, 1, vec), collapse = ", ")),
  sprintf('  "var_R": %s, "var_TR": %s,', num(vc["VarR", 1]), num(vc["VarTR", 1])),
  sprintf('  "var": %s, "cov1": %s, "cov2": %s, "cov3": %s,', num(vc["Var", 1]), num(vc["Cov1", 1]), num(vc["Cov2", 1]), num(vc["Cov3", 1])),
  sprintf('  "ms_T": %s, "ms_TR": %s,', num(st$ANOVA$TRanova["T", "MS"]), num(st$ANOVA$TRanova["TR", "MS"])),
  sprintf('  "rrrc_F": %s, "rrrc_ddf": %s, "rrrc_p": %s,', num(st$RRRC$FTests["Treatment", "FStat"]), num(st$RRRC$FTests["Error", "DF"]), num(st$RRRC$FTests["Treatment", "p"])),
  sprintf('  "frrc_chisq": %s, "frrc_p": %s,', num(frrc$FTests["Treatment", "Chisq"]), num(frrc$FTests["Treatment", "p"])),
  sprintf('  "rrfc_F": %s, "rrfc_p": %s', num(rrfc$FTests["T", "F"]), num(rrfc$FTests["T", "p"])),
  "}"
)
cat(out, sep = "\n")
